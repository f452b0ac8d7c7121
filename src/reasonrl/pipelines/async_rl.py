"""Asynchronous RL: a rollout producer generates ahead of the learner, at most `max_staleness` versions.

The learner loop reads like the sync one: take the next generated batch, drop groups older than the bound
(their prompts go back to the producer), score, `learn` (the sync pipeline's own step), then publish the new
weights to the producer. The loss is the decoupled objective (`algorithm.correction: decoupled` by default
in async mode): it clips against the learner's pre-update policy and importance-weights by its ratio to
the behaviour policy that sampled each token. See docs/async.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from transformers import AutoModelForCausalLM

from reasonrl.config import RunConfig
from reasonrl.engines.hf import HFEngine
from reasonrl.pipelines.setup import Run, build_run
from reasonrl.pipelines.sync import (
    finish,
    held_out,
    learn,
    mark_correct,
    measure_before,
    progress_display,
    stop_if_nonfinite,
)
from reasonrl.rollout.collect import score_samples
from reasonrl.rollout.metrics import rollout_metrics
from reasonrl.rollout.producer import RolloutProducer, weight_snapshot
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.staleness import split_by_staleness, staleness_metrics
from reasonrl.tracking import Stopwatch
from reasonrl.training.checkpoint import latest_checkpoint, save_checkpoint
from reasonrl.training.learner import Learner


@dataclass
class AsyncHooks:
    """Calls into the two loops, for tests that inject delays: `on_generate(batch_index)` runs on the
    producer thread before each generate call, `on_update(step)` on the learner before each update."""

    on_generate: Callable[[int], None] | None = None
    on_update: Callable[[int], None] | None = None


def generation_engine(learner: Learner, seed: int) -> HFEngine:
    """An hf engine on its own copy of the learner's (merged) weights, so generation and updates overlap."""
    base = learner.model.get_base_model() if learner.lora else learner.model  # type: ignore[attr-defined]
    model = AutoModelForCausalLM.from_config(base.config, dtype=base.dtype)
    model.load_state_dict(dict(learner.engine_weights()))
    return HFEngine(model.to(learner.device).eval(), learner.tokenizer, seed=seed)


def build_producer(run: Run, hooks: AsyncHooks, *, resumed: bool) -> RolloutProducer:
    """The producer, resumed where the newest checkpoint left it: outstanding prompts first, same RNG."""
    config = run.config
    engine = generation_engine(run.learner, config.train.seed)
    engine.version = run.version
    engine.set_rng_state(run.engine.rng_state())  # restored from the checkpoint by build_run on resume
    pending = []
    checkpoint = latest_checkpoint(run.directory.checkpoints_dir) if resumed else None
    if checkpoint is not None:
        by_id = {p.id: p for p in run.sampler.prompts}
        saved = json.loads((checkpoint / "state.json").read_text())
        pending = [by_id[prompt_id] for prompt_id in saved.get("outstanding", [])]
    return RolloutProducer(
        engine,
        run.encode,
        run.sampling,
        run.sampler,
        prompts_per_batch=config.rollout.batch_size // config.rollout.group_size,
        group_size=config.rollout.group_size,
        max_staleness=config.async_training.max_staleness,
        version=run.version,
        last_index=config.train.steps,
        pending=pending,
        on_generate=hooks.on_generate,
    )


def async_step(run: Run, producer: RolloutProducer, timer: Stopwatch, hooks: AsyncHooks) -> dict[str, float]:
    """One learner step on the next fresh batch; returns its metrics."""
    group_size, max_staleness = run.config.rollout.group_size, run.config.async_training.max_staleness
    dropped = 0
    samples: list[Sample] = []
    while not samples:
        with timer("wait_for_rollouts"):
            batch = producer.next_batch()
        samples, stale = split_by_staleness(batch.samples, run.version, max_staleness, group_size)
        if stale:
            dropped += len(stale)
            producer.requeue([s.prompt for s in stale[::group_size]])
    with timer("reward"):
        score_samples(samples, run.train_pool)
        if run.eval_pool is not None:
            mark_correct(samples, run.eval_pool)
    age = staleness_metrics(samples, run.version, max_staleness)
    if hooks.on_update is not None:
        hooks.on_update(run.step + 1)
    metrics = {**rollout_metrics(samples, group_size), **learn(run, timer, samples), **age}
    producer.mark_trained([s.prompt for s in samples[::group_size]])
    metrics["async/dropped_stale_samples"] = float(dropped)
    return metrics


def overlap_metrics(step_seconds: float, training_idle: float, generate_seconds: float) -> dict[str, float]:
    """Idle time of the learner and the seconds both loops were busy at once, at least: generating +
    training - wall = generating - training idle (exact when the two are never idle together)."""
    overlap = max(0.0, generate_seconds - training_idle)
    return {
        "async/training_idle_seconds": training_idle,
        "async/overlap_seconds": overlap,
        "async/overlap_share": overlap / max(step_seconds, 1e-9),
    }


def checkpoint(run: Run, producer: RolloutProducer) -> None:
    """The sync checkpoint plus the producer's outstanding prompts; the sampler cursor is the producer's."""
    save_checkpoint(
        run.directory.checkpoints_dir,
        run.step,
        save_model=run.learner.save_model,
        trainer_state={"learner": run.learner.state_dict(), "engine_rng": producer.engine_rng_state()},
        pipeline_state={**producer.state_dict(), "version": run.version, "history": run.history},
        keep_last=run.config.checkpoint.keep_last,
    )


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    console: Console | None = None,
    on_warmup_step: Callable[[int, dict[str, float]], None] | None = None,
    hooks: AsyncHooks | None = None,
) -> dict[str, Any]:
    """Run (or resume) an async training run; returns the summary also written to `summary.json`."""
    started = time.perf_counter()
    hooks = hooks or AsyncHooks()
    run = build_run(config, resume=resume, warmup_log=on_warmup_step)
    run.learner.off_policy = True
    producer = build_producer(run, hooks, resumed=resume)
    try:
        measure_before(run)
        samples_done = 0
        rl_started = time.perf_counter()
        timer = Stopwatch()
        producer.start()
        with progress_display(run, console) as progress:
            while run.step < config.train.steps:
                metrics = async_step(run, producer, timer, hooks)
                run.step += 1
                samples_done += config.rollout.batch_size
                with timer("weight_sync"):
                    weights = weight_snapshot(run.learner.engine_weights())
                if config.eval.every_steps and run.step % config.eval.every_steps == 0:
                    metrics |= held_out(run)
                metrics |= timer.lap()
                metrics |= producer.lap()
                metrics |= overlap_metrics(
                    metrics["time/step"], metrics.get("time/wait_for_rollouts", 0.0), metrics["async/generate_seconds"]
                )
                metrics["perf/samples_per_second"] = config.rollout.batch_size / max(metrics["time/step"], 1e-9)
                run.tracker.log(run.step, metrics)
                progress.update(run.step, metrics)
                # Checkpoint before publishing: with max_staleness 0 the producer then waits, so the saved
                # engine RNG and outstanding prompts are exactly those of this step's end.
                if config.checkpoint.every_steps and run.step % config.checkpoint.every_steps == 0:
                    checkpoint(run, producer)
                producer.publish(weights, run.version)
                stop_if_nonfinite(run, lambda: (producer.stop(), checkpoint(run, producer)))
        producer.stop()
        rl_seconds = time.perf_counter() - rl_started
        return finish(
            run,
            started=started,
            samples_done=samples_done,
            rl_seconds=rl_seconds,
            save=lambda: checkpoint(run, producer),
        )
    finally:
        producer.stop()
        run.close()
