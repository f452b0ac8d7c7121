"""The training sampler: seeded epochs, each prompt once per epoch, lossless resume from a saved cursor."""

from __future__ import annotations

import json

import pytest

from reasonrl.data import DataError, Prompt, PromptSampler

PROMPTS = [Prompt(id=f"p{i}", answer=str(i), task="exact", text=f"{i}=") for i in range(10)]


def ids(batch: list[Prompt]) -> list[str]:
    return [p.id for p in batch]


def test_same_seed_same_batches_other_seed_other_order() -> None:
    a, b, c = (PromptSampler(PROMPTS, seed=s) for s in (0, 0, 1))
    batches_a = [ids(a.next_batch(4)) for _ in range(6)]
    assert batches_a == [ids(b.next_batch(4)) for _ in range(6)]
    assert batches_a != [ids(c.next_batch(4)) for _ in range(6)]


def test_every_prompt_once_per_epoch_and_epochs_reshuffle() -> None:
    sampler = PromptSampler(PROMPTS, seed=3)
    stream = ids(sampler.next_batch(7)) + ids(sampler.next_batch(7)) + ids(sampler.next_batch(6))
    first, second = stream[:10], stream[10:]
    assert sorted(first) == sorted(second) == sorted(p.id for p in PROMPTS)
    assert first != second and sampler.epoch == 1 and sampler.position == 10
    assert ids(PromptSampler(PROMPTS, shuffle=False).next_batch(12)) == [f"p{i}" for i in range(10)] + [
        "p0",
        "p1",
    ]


@pytest.mark.parametrize("steps_before", [0, 1, 2, 5])
def test_resume_gives_exactly_the_following_batches(steps_before: int) -> None:
    sizes = [3, 4, 8, 1, 5, 7, 2, 6]
    original = PromptSampler(PROMPTS, seed=11)
    for size in sizes[:steps_before]:
        original.next_batch(size)
    state = json.loads(json.dumps(original.state_dict()))  # survives a round trip through a checkpoint file
    expected = [ids(original.next_batch(size)) for size in sizes[steps_before:]]

    resumed = PromptSampler(PROMPTS, seed=11)
    resumed.load_state_dict(state)
    assert [ids(resumed.next_batch(size)) for size in sizes[steps_before:]] == expected


def test_resume_on_other_data_or_seed_is_refused() -> None:
    state = PromptSampler(PROMPTS, seed=0).state_dict()
    with pytest.raises(DataError, match=r"saved for 10 prompts .* this run has 9 prompts"):
        PromptSampler(PROMPTS[:9], seed=0).load_state_dict(state)
    with pytest.raises(DataError, match=r"seed 0, shuffle True.* seed 1, shuffle True"):
        PromptSampler(PROMPTS, seed=1).load_state_dict(state)


def test_empty_prompts_and_bad_batch_size() -> None:
    with pytest.raises(DataError, match="no training prompts"):
        PromptSampler([])
    with pytest.raises(ValueError, match="at least 1"):
        PromptSampler(PROMPTS).next_batch(0)
