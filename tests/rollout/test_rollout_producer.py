"""The rollout producer on a fake engine: admission keeps it at most max_staleness versions ahead, new
weights reach the engine between generate calls, and requeued and untrained prompts are never lost."""

from __future__ import annotations

import time
from concurrent.futures import Future

import pytest
import torch

from reasonrl.data import Prompt, PromptSampler
from reasonrl.engines.base import SamplingSettings
from reasonrl.rewards.pool import computed
from reasonrl.rollout.producer import RolloutBatch, RolloutProducer, weight_snapshot
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.scheduler import SchedulerSettings

from .step_engine import StepEngine

PROMPTS = [Prompt(id=f"p{i}", answer=i, task="exact", text=f"q{i}") for i in range(20)]


def _all_correct(samples: list[Sample]) -> None:
    for sample in samples:
        sample.reward = 1.0


def _score(samples: list[Sample]) -> Future[None]:
    return computed(_all_correct, samples)


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


# ---- interruptions: stop, pause, dropped batches -------------------------------------------------------
def _slow_producer(step_seconds: float, length: int, **kwargs) -> tuple[StepEngine, RolloutProducer]:  # type: ignore[no-untyped-def]
    engine = StepEngine(lambda ids: length, step_seconds=step_seconds)
    producer = RolloutProducer(
        engine,  # type: ignore[arg-type]
        lambda prompt: [1, 2],  # type: ignore[arg-type]
        SamplingSettings(max_new_tokens=length),
        PromptSampler(PROMPTS, shuffle=False),
        SchedulerSettings(prompts_per_batch=2, group_size=2, max_staleness=1),
        score=_score,
        version=0,
        last_index=10,
        **kwargs,
    )
    return engine, producer


def _wait_for_decoding(engine: StepEngine) -> None:
    deadline = time.perf_counter() + 10
    while engine.steps < 3 and time.perf_counter() < deadline:
        time.sleep(0.01)


def test_stop_aborts_the_generate_call_in_progress_within_a_decode_step() -> None:
    # Before: stop() joined after the whole call (here 3,000 steps of 10 ms = 30 s).
    engine, producer = _slow_producer(0.01, 3000)
    producer.start()
    _wait_for_decoding(engine)
    started = time.perf_counter()
    producer.stop()
    assert time.perf_counter() - started < 2.0
    rollouts = producer.state_dict()["rollouts"]["groups"]
    assert len(rollouts) == 2 and all(0 < len(m["response_ids"]) < 3000 for g in rollouts for m in g["members"])
    assert producer.state_dict()["outstanding"] == ["p0", "p1"]  # nothing lost: a checkpoint keeps them


def test_a_pause_takes_effect_within_a_decode_step_and_generation_continues_after_it() -> None:
    engine, producer = _slow_producer(0.01, 120)
    producer.start()
    try:
        _wait_for_decoding(engine)
        started = time.perf_counter()
        with producer.paused():
            waited = time.perf_counter() - started
            state = producer.state_dict()["rollouts"]["groups"]
            steps = engine.steps
            time.sleep(0.1)
            assert engine.steps == steps  # the engine is held: no decode step during the pause
        assert waited < 1.0  # before: the checkpoint waited for the whole call (1.2 s here)
        tokens = [len(m["response_ids"]) for g in state for m in g["members"]]
        assert all(0 < n < 120 for n in tokens)
        batch = producer.next_batch()  # the cut responses were continued to their full length
        assert [len(s.response_ids) for s in batch.samples] == [120] * 4
        assert all(s.finish_reason == "stop" for s in batch.samples)
        assert batch.metrics["rollout/interrupted_calls"] == 1.0
        assert engine.calls[:2] == [(0, 4), (0, 4)]  # the call that was cut, then its continuation
    finally:
        producer.stop()


@pytest.mark.parametrize("max_staleness", [0, 1])
def test_a_batch_the_learner_drops_is_replaced_so_every_step_gets_one(max_staleness: int) -> None:
    # Before: the producer admitted no batch at or past last_index, so the last step waited forever, and at
    # max_staleness 0 the next step deadlocked (batch k+1 waited for a version the learner never published).
    engine = StepEngine(lambda ids: 1)
    producer = _producer(engine, max_staleness=max_staleness, last_index=3)
    producer.start()
    trained = []
    try:
        for step in range(3):
            batch = producer.next_batch()
            if step == 1 and len(trained) == 1:  # as if the whole batch were too stale: drop, then take another
                producer.requeue(_prompts(batch))
                producer.skip_batch()
                batch = producer.next_batch()
            trained.append([p.id for p in _prompts(batch)])
            producer.mark_trained(_prompts(batch))
            producer.publish({}, version=step + 1)
    finally:
        producer.stop()
    assert len(trained) == 3 and len(engine.calls) == 4
    assert {"p2", "p3"} <= {p for batch in trained for p in batch}  # the dropped prompts came back
    assert producer.state_dict()["outstanding"] == []


def _long_tail(prompt_id: int) -> int:
    """Most responses short, one in five long: the shape partial rollouts are for."""
    return 40 if prompt_id % 5 == 0 else 4 + prompt_id % 7


def test_partial_rollouts_at_staleness_2_continue_leftovers_instead_of_restarting_them() -> None:
    # Before: the producer ran at the bound (batch k from weights k - 2), so whatever batch k left unfinished
    # had begun one version too early for batch k + 1 and was always restarted: no response was ever
    # continued and the restarts threw away a large share of the generated tokens.
    engine = StepEngine(lambda ids: _long_tail(ids[0]))
    producer = RolloutProducer(
        engine,  # type: ignore[arg-type]
        lambda prompt: [int(prompt.id[1:])],  # type: ignore[arg-type]
        SamplingSettings(max_new_tokens=64),
        PromptSampler([Prompt(id=f"p{i}", answer=i, task="exact", text="q") for i in range(400)], shuffle=False),
        SchedulerSettings(prompts_per_batch=4, group_size=2, max_staleness=2, partial_rollouts=True, overprovision=2.0),
        score=_score,
        version=0,
        last_index=40,
    )
    producer.start()
    continued = 0
    try:
        for step in range(40):
            batch = producer.next_batch()
            assert all(step - s.start_version <= 2 for s in batch.samples)  # the bound holds
            continued += int(batch.metrics["partial/continued_samples"])
            time.sleep(0.01)  # the learner is the slower loop: the producer waits at its admission bound
            producer.publish({}, version=step + 1)
    finally:
        producer.stop()
    assert continued > 0
    assert batch.metrics["partial/dropped_token_share"] < 0.10
