"""The rollout producer on a fake engine: admission keeps it at most max_staleness versions ahead, new
weights reach the engine between generate calls, and requeued and untrained prompts are never lost."""

from __future__ import annotations

import time

import torch

from reasonrl.data import Prompt, PromptSampler
from reasonrl.engines.base import SamplingSettings
from reasonrl.rollout.producer import RolloutBatch, RolloutProducer, weight_snapshot
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.scheduler import SchedulerSettings

from .step_engine import StepEngine

PROMPTS = [Prompt(id=f"p{i}", answer=i, task="exact", text=f"q{i}") for i in range(20)]


def _score(samples: list[Sample]) -> None:
    for sample in samples:
        sample.reward = 1.0


def _producer(engine: StepEngine, max_staleness: int, last_index: int = 10, **kwargs) -> RolloutProducer:  # type: ignore[no-untyped-def]
    return RolloutProducer(
        engine,  # type: ignore[arg-type]
        lambda prompt: [1, 2],  # type: ignore[arg-type]
        SamplingSettings(max_new_tokens=1),
        PromptSampler(PROMPTS, shuffle=False),
        SchedulerSettings(prompts_per_batch=2, group_size=2, max_staleness=max_staleness),
        score=_score,
        version=0,
        last_index=last_index,
        **kwargs,
    )


def _prompts(batch: RolloutBatch) -> list[Prompt]:
    return [s.prompt for s in batch.samples[::2]]


def _settle() -> None:
    time.sleep(0.2)  # long enough for the producer thread to generate whatever it is admitted to


def test_the_producer_runs_at_most_max_staleness_batches_ahead_and_loads_published_weights() -> None:
    engine = StepEngine(lambda ids: 1)
    producer = _producer(engine, max_staleness=1)
    producer.start()
    try:
        _settle()
        assert engine.calls == [(0, 4), (0, 4)]  # batches 0 and 1 are admitted at version 0; batch 2 needs version 1
        first = producer.next_batch()
        assert (first.index, [p.id for p in _prompts(first)]) == (0, ["p0", "p1"])
        assert all(s.start_version == 0 for s in first.samples)
        producer.publish(weight_snapshot([("w", torch.ones(2))]), version=1)
        _settle()
        assert engine.calls[2] == (1, 4) and torch.equal(engine.loaded[0]["w"], torch.ones(2))
    finally:
        producer.stop()


def test_requeued_and_untrained_prompts_stay_outstanding_and_come_back_first() -> None:
    engine = StepEngine(lambda ids: 1)
    producer = _producer(engine, max_staleness=0)
    producer.start()
    try:
        batch = producer.next_batch()
        producer.requeue(_prompts(batch)[1:])  # as if p1's group had been too stale to train on
        producer.mark_trained(_prompts(batch)[:1])
        assert producer.state_dict()["outstanding"] == ["p1"]
        producer.publish({}, version=1)
        again = producer.next_batch()
        assert [p.id for p in _prompts(again)] == ["p1", "p2"]  # the requeued prompt first, then new ones
        assert producer.state_dict()["outstanding"] == ["p1", "p2"]
        assert producer.state_dict()["sampler"]["position"] == 3
    finally:
        producer.stop()


def test_pending_prompts_of_a_checkpoint_are_generated_before_new_ones() -> None:
    engine = StepEngine(lambda ids: 1)
    producer = _producer(engine, max_staleness=0, pending=[PROMPTS[5]])
    producer.start()
    try:
        assert [p.id for p in _prompts(producer.next_batch())] == ["p5", "p0"]
    finally:
        producer.stop()


def test_no_batch_is_admitted_past_the_last_step() -> None:
    engine = StepEngine(lambda ids: 1)
    producer = _producer(engine, max_staleness=3, last_index=2)
    producer.start()
    _settle()
    producer.stop()
    assert len(engine.calls) == 2
