"""The sync pipeline's batches come from the async scheduler at staleness 0: without dynamic sampling or GRESO
they are the old synchronous batch bit for bit (same prompts, one generate call, one reward call, same engine
RNG); with them the scheduler's rules apply and its state survives a checkpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasonrl.config.schema import PromptFormat
from reasonrl.data import Prompt, PromptSampler, load_prompts
from reasonrl.engines.base import SamplingSettings
from reasonrl.engines.hf import HFEngine
from reasonrl.rewards.pool import computed
from reasonrl.rollout.batches import SyncRollouts
from reasonrl.rollout.collect import PromptEncoder, generate_samples
from reasonrl.rollout.greso import SelectiveRollouts
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.scheduler import SchedulerSettings

from .step_engine import StepEngine

PROMPTS = [Prompt(id=f"p{i}", answer=i, task="exact", text=f"q{i}") for i in range(400)]
SAMPLING = SamplingSettings(max_new_tokens=64)


def settings(**kwargs) -> SchedulerSettings:  # type: ignore[no-untyped-def]
    return SchedulerSettings(prompts_per_batch=3, group_size=2, max_staleness=0, **kwargs)


def parity(samples: list[Sample]) -> None:
    for sample in samples:
        sample.reward = float(len(sample.response_text) % 2)


def in_line(fill: Callable[[list[Sample]], None]) -> Callable[[list[Sample]], Future[None]]:
    """The scheduler's submit-style `score` for a function that fills rewards in place, scoring at once."""
    return lambda samples: computed(fill, samples)


def record(sample: Sample) -> tuple:  # type: ignore[type-arg]
    return (
        sample.prompt.id,
        sample.group_index,
        sample.prompt_ids,
        sample.response_ids,
        sample.behaviour_logprobs,
        sample.policy_version,
        sample.start_version,
        sample.finish_reason,
        sample.response_text,
        sample.reward,
    )


def test_without_filters_a_batch_is_the_old_synchronous_batch_bit_for_bit(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    prompts = load_prompts("sum?size=40")
    encode = PromptEncoder(tokenizer, PromptFormat(template="plain"))
    sampling = SamplingSettings(max_new_tokens=8, temperature=1.0)
    old_engine, new_engine = HFEngine(model, tokenizer, seed=3), HFEngine(model, tokenizer, seed=3)
    old_sampler, new_sampler = PromptSampler(prompts, seed=1), PromptSampler(prompts, seed=1)
    score_calls: list[int] = []

    def score(samples: list[Sample]) -> None:
        score_calls.append(len(samples))
        parity(samples)

    rollouts = SyncRollouts(new_engine, encode, sampling, new_sampler, settings(), score=in_line(score))
    for version in range(3):
        old = generate_samples(old_sampler.next_batch(3), 2, old_engine, encode, sampling)
        parity(old)
        new = rollouts.next_batch(version)
        assert [record(s) for s in new.samples] == [record(s) for s in old]
        assert new.scored == new.samples and new.metrics["rollout/generate_calls"] == 1.0
        assert torch.equal(old_engine.generator.get_state(), new_engine.generator.get_state())
        for engine in (old_engine, new_engine):
            engine.update_weights([], version + 1)
    assert score_calls == [6, 6, 6]  # one reward call per batch, as before: workers score the batch together
    assert old_sampler.state_dict() == new_sampler.state_dict()


def test_dynamic_sampling_keeps_informative_groups_and_logs_everything_it_scored() -> None:
    def every_third_all_correct(samples: list[Sample]) -> None:
        for index, sample in enumerate(samples):
            sample.reward = 1.0 if int(sample.prompt.id[1:]) % 3 == 0 else float(index % 2 == 0)

    sampler = PromptSampler(PROMPTS, shuffle=False)
    rollouts = SyncRollouts(
        StepEngine(lambda ids: 3),  # type: ignore[arg-type]
        lambda prompt: [int(prompt.id[1:])],  # type: ignore[arg-type]
        SAMPLING,
        sampler,
        settings(dynamic_sampling=True, max_extra_prompts=8),
        score=in_line(every_third_all_correct),
    )
    batch = rollouts.next_batch(0)
    # p0 is dropped; the refill draws ceil(1.25 x 1 missing / keep rate 1.0) = 2: p3 (dropped) and p4.
    assert [s.prompt.id for s in batch.samples[::2]] == ["p1", "p2", "p4"]
    assert [s.group_index for s in batch.samples] == [0, 0, 1, 1, 2, 2]
    assert [s.prompt.id for s in batch.scored[::2]] == ["p0", "p1", "p2", "p3", "p4"]
    assert batch.metrics["dynamic_sampling/dropped_groups"] == 2.0
    assert batch.metrics["dynamic_sampling/extra_prompts"] == 2.0


def test_a_checkpoint_between_steps_keeps_the_groups_drawn_for_a_later_batch() -> None:
    def one_in_three_informative(samples: list[Sample]) -> None:
        for index, sample in enumerate(samples):
            sample.reward = float(index % 2 == 0) if int(sample.prompt.id[1:]) % 3 != 1 else 1.0

    def build() -> tuple[SyncRollouts, PromptSampler, StepEngine]:
        sampler, engine = PromptSampler(PROMPTS, seed=4), StepEngine(lambda ids: 2 + ids[0] % 5)
        selective = SelectiveRollouts(seed=0)
        rollouts = SyncRollouts(
            engine,  # type: ignore[arg-type]
            lambda prompt: [int(prompt.id[1:])],  # type: ignore[arg-type]
            SAMPLING,
            sampler,
            settings(dynamic_sampling=True, max_extra_prompts=16),
            score=in_line(one_in_three_informative),
            selective=selective,
        )
        return rollouts, sampler, engine

    original, sampler, engine = build()
    for version in range(3):
        engine.version = version
        original.next_batch(version)
    state = json.loads(json.dumps(original.state_dict()))
    assert state["groups"], "the refill over-draws: some ready groups wait for the next batch"
    restored, restored_sampler, restored_engine = build()
    restored.load_state_dict(state, {p.id: p for p in PROMPTS})
    restored_sampler.load_state_dict(sampler.state_dict())
    for version in (3, 4, 5):
        engine.version = restored_engine.version = version
        a, b = original.next_batch(version), restored.next_batch(version)
        assert [record(s) for s in a.samples] == [record(s) for s in b.samples]
        assert a.metrics == b.metrics or {k for k in a.metrics if a.metrics[k] != b.metrics[k]} == {
            "rollout/reward_seconds"
        }


def test_selective_rollouts_skip_prompts_in_the_sync_pipeline_too() -> None:
    selective = SelectiveRollouts(seed=0)
    for _ in range(6):
        for i in range(0, 20, 2):
            selective.record(f"p{i}", [1.0, 1.0])
    rollouts = SyncRollouts(
        StepEngine(lambda ids: 3),  # type: ignore[arg-type]
        lambda prompt: [int(prompt.id[1:])],  # type: ignore[arg-type]
        SAMPLING,
        PromptSampler(PROMPTS, shuffle=False),
        settings(),
        score=in_line(parity),
        selective=selective,
    )
    batch = rollouts.next_batch(0)
    assert [s.prompt.id for s in batch.samples[::2]] == ["p1", "p3", "p5"]
    assert batch.metrics["greso/skipped_prompts"] == 3  # p0, p2, p4


@pytest.mark.parametrize("bad", [{"max_staleness": 1}, {"partial_rollouts": True, "max_staleness": 2}])
def test_sync_rollouts_refuse_to_run_ahead(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match="staleness 0, without partial rollouts"):
        SyncRollouts(
            StepEngine(lambda ids: 3),  # type: ignore[arg-type]
            lambda prompt: [0],  # type: ignore[arg-type]
            SAMPLING,
            PromptSampler(PROMPTS),
            SchedulerSettings(prompts_per_batch=1, group_size=2, **bad),
            score=in_line(parity),
        )


def test_the_scheduler_lock_is_a_plain_condition() -> None:
    rollouts = SyncRollouts(
        StepEngine(lambda ids: 3),  # type: ignore[arg-type]
        lambda prompt: [0],  # type: ignore[arg-type]
        SAMPLING,
        PromptSampler(PROMPTS),
        settings(),
        score=in_line(parity),
    )
    assert isinstance(rollouts.scheduler.lock, threading.Condition)
