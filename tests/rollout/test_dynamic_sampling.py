"""Dynamic sampling's refill loop with a scripted draw: what it keeps, draws, reports and when it gives up."""

from __future__ import annotations

import logging

import pytest

from reasonrl.data import Prompt
from reasonrl.rollout.dynamic_sampling import keep_informative_groups
from reasonrl.rollout.samples import Sample

GROUP = 2


def make_draw(rewards: list[float]):  # type: ignore[no-untyped-def]
    stream, calls = iter(rewards), []

    def draw(prompts: int) -> list[Sample]:
        calls.append(prompts)
        samples = []
        for group in range(prompts):
            prompt = Prompt(id=f"p{len(calls)}-{group}", answer="1", task="exact", text="q")
            for _ in range(GROUP):
                samples.append(Sample(prompt, group, [1], [2], [-0.5], [0], "stop", "r", reward=next(stream)))
        return samples

    return draw, calls


def test_full_batch_on_the_first_draw_draws_nothing_more() -> None:
    draw, calls = make_draw([1, 0, 0, 1, 1, 0])
    result = keep_informative_groups(draw, 3, GROUP, max_extra_prompts=10, step=1)
    assert calls == [3] and len(result.samples) == 6 and result.generated == result.samples
    assert result.metrics == {
        "dynamic_sampling/dropped_groups": 0.0,
        "dynamic_sampling/extra_prompts": 0.0,
        "dynamic_sampling/kept_groups": 3.0,
        "dynamic_sampling/rounds": 1.0,
        "dynamic_sampling/gave_up": 0.0,
    }


def test_dropped_groups_are_refilled_with_exactly_the_missing_count() -> None:
    # draw 1: groups [1,1] drop, [0,1] keep, [0,0] drop -> 2 missing
    # draw 2 (2 prompts): [1,1] drop, [1,0] keep -> 1 missing;  draw 3 (1 prompt): [0,1] keep
    draw, calls = make_draw([1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1])
    result = keep_informative_groups(draw, 3, GROUP, max_extra_prompts=10, step=1)
    assert calls == [3, 2, 1]
    assert [s.reward for s in result.samples] == [0, 1, 1, 0, 0, 1]
    assert [s.group_index for s in result.samples] == [0, 0, 1, 1, 2, 2]
    assert len(result.generated) == 12
    assert result.metrics["dynamic_sampling/dropped_groups"] == 3.0
    assert result.metrics["dynamic_sampling/extra_prompts"] == 3.0
    assert result.metrics["dynamic_sampling/rounds"] == 3.0
    assert result.metrics["dynamic_sampling/gave_up"] == 0.0


def test_out_of_budget_it_trains_on_what_it_kept_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    # draw 1 keeps one of three groups; the budget of 1 extra prompt buys one more, which is dropped
    draw, calls = make_draw([1, 1, 0, 1, 0, 0, 1, 1])
    with caplog.at_level(logging.WARNING):
        result = keep_informative_groups(draw, 3, GROUP, max_extra_prompts=1, step=7)
    assert calls == [3, 1]
    assert [s.reward for s in result.samples] == [0, 1]
    assert result.metrics["dynamic_sampling/gave_up"] == 1.0
    assert result.metrics["dynamic_sampling/extra_prompts"] == 1.0
    assert "step 7: dynamic sampling kept 1 of 3 groups after 1 extra prompts" in caplog.text
    assert "training on the groups it kept" in caplog.text


def test_when_no_group_has_signal_it_trains_on_the_first_draw(caplog: pytest.LogCaptureFixture) -> None:
    draw, calls = make_draw([1, 1, 0, 0, 0, 0, 0, 0])
    with caplog.at_level(logging.WARNING):
        result = keep_informative_groups(draw, 2, GROUP, max_extra_prompts=2, step=1)
    assert calls == [2, 2]
    assert [s.prompt.id for s in result.samples] == ["p1-0", "p1-0", "p1-1", "p1-1"]
    assert result.metrics["dynamic_sampling/kept_groups"] == 0.0
    assert "no group had differing rewards, so training on the first draw unfiltered" in caplog.text
