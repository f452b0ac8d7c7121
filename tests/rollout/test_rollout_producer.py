"""The rollout producer on a fake engine: admission keeps it at most max_staleness versions ahead, new
weights reach the engine between generate calls, and requeued and untrained prompts are never lost."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import torch

from reasonrl.data import Prompt, PromptSampler
from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings
from reasonrl.rollout.producer import RolloutProducer, weight_snapshot


class FakeEngine:
    """Answers every request with one token; records the version of each generate call."""

    def __init__(self) -> None:
        self.version = 0
        self.calls: list[int] = []
        self.loaded: list[dict[str, torch.Tensor]] = []

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[Generation]:
        self.calls.append(self.version)
        return [Generation(response_ids=[7], logprobs=[-0.5], finish_reason="stop", text="7") for _ in requests]

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]], version: int) -> None:
        self.loaded.append(dict(named_tensors))
        self.version = version

    def rng_state(self) -> dict[str, object]:
        return {}

    def set_rng_state(self, state: dict[str, object]) -> None:
        pass

    def close(self) -> None:
        pass


PROMPTS = [Prompt(id=f"p{i}", answer=i, task="exact", text=f"q{i}") for i in range(20)]


def _producer(engine: FakeEngine, max_staleness: int, last_index: int = 10, **kwargs) -> RolloutProducer:  # type: ignore[no-untyped-def]
    return RolloutProducer(
        engine,
        lambda prompt: [1, 2],  # type: ignore[arg-type]
        SamplingSettings(max_new_tokens=1),
        PromptSampler(PROMPTS, shuffle=False),
        prompts_per_batch=2,
        group_size=2,
        max_staleness=max_staleness,
        version=0,
        last_index=last_index,
        **kwargs,
    )


def _settle() -> None:
    time.sleep(0.2)  # long enough for the producer thread to generate whatever it is admitted to


def test_the_producer_runs_at_most_max_staleness_batches_ahead_and_loads_published_weights() -> None:
    engine = FakeEngine()
    producer = _producer(engine, max_staleness=1)
    producer.start()
    try:
        _settle()
        assert engine.calls == [0, 0]  # batches 0 and 1 are admitted at version 0; batch 2 needs version 1
        first = producer.next_batch()
        assert (first.index, [p.id for p in first.prompts]) == (0, ["p0", "p1"])
        assert all(s.start_version == 0 for s in first.samples)
        producer.publish(weight_snapshot([("w", torch.ones(2))]), version=1)
        _settle()
        assert engine.calls == [0, 0, 1] and torch.equal(engine.loaded[0]["w"], torch.ones(2))
    finally:
        producer.stop()


def test_requeued_and_untrained_prompts_stay_outstanding_and_come_back_first() -> None:
    engine = FakeEngine()
    producer = _producer(engine, max_staleness=0)
    producer.start()
    try:
        batch = producer.next_batch()
        producer.requeue(batch.prompts[1:])  # as if p1's group had been too stale to train on
        producer.mark_trained(batch.prompts[:1])
        assert producer.state_dict()["outstanding"] == ["p1"]
        producer.publish({}, version=1)
        again = producer.next_batch()
        assert [p.id for p in again.prompts] == ["p1", "p2"]  # the requeued prompt first, then new ones
        assert producer.state_dict()["outstanding"] == ["p1", "p2"]
        assert producer.state_dict()["sampler"]["position"] == 3
    finally:
        producer.stop()


def test_pending_prompts_of_a_checkpoint_are_generated_before_new_ones() -> None:
    engine = FakeEngine()
    producer = _producer(engine, max_staleness=0, pending=[PROMPTS[5]])
    producer.start()
    try:
        assert [p.id for p in producer.next_batch().prompts] == ["p5", "p0"]
    finally:
        producer.stop()


def test_no_batch_is_admitted_past_the_last_step() -> None:
    engine = FakeEngine()
    producer = _producer(engine, max_staleness=3, last_index=2)
    producer.start()
    _settle()
    producer.stop()
    assert len(engine.calls) == 2
