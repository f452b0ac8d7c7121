"""Asynchronous RL: a rollout producer generates ahead of the learner, at most `max_staleness` versions.

The learner loop reads like the sync one: take the next generated batch, drop groups older than the bound
(their prompts go back to the producer), score, `learn` (`pipelines/step.py`, shared with the sync pipeline),
then publish the new weights to the producer. The loss is the decoupled objective (`algorithm.correction:
decoupled` by default in async mode): it clips against the learner's pre-update policy and importance-weights
by its ratio to the behaviour policy that sampled each token. See docs/async.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any

import torch
from rich.console import Console

from reasonrl.config import RunConfig
from reasonrl.engines.base import StreamingEngine
from reasonrl.pipelines.setup import Run, build_run, engine_site
from reasonrl.pipelines.step import (
    backend_metrics,
    checkpoint_on_lost_roles,
    finish,
    held_out,
    learn,
    measure_before,
    progress_display,
    stop_if_nonfinite,
    write_checkpoint,
)
from reasonrl.rewards import RewardPool
from reasonrl.rewards.majority_labels import MajorityLabelPool, training_reward_pool, verifier_pool
from reasonrl.rollout.collect import submit_scores
from reasonrl.rollout.metrics import rollout_metrics
from reasonrl.rollout.producer import RolloutProducer, weight_snapshot
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.scheduler import SchedulerSettings
from reasonrl.rollout.speculative import SpeculativeRollouts
from reasonrl.rollout.staleness import split_by_staleness, staleness_metrics
from reasonrl.rollout.tree import TreeRollouts
from reasonrl.tracking import Stopwatch
from reasonrl.training.checkpoint import latest_checkpoint, load_producer_state
from reasonrl.training.models import thread_budget

logger = logging.getLogger(__name__)


@dataclass
class AsyncHooks:
    """Calls into the two loops, for tests that inject delays: `on_generate(batch_index)` runs on the
    producer thread before each generate call, `on_update(step)` on the learner before each update."""

    on_generate: Callable[[int], None] | None = None
    on_update: Callable[[int], None] | None = None


def generation_engine(run: Run, seed: int) -> StreamingEngine:
    """The producer's engine, on its own copy of the learner's (merged) weights so that generation and
    updates overlap (`rollout.placement`; auto: an hf engine on the producer's thread, or, for
    `rollout.engine: vllm` or auto on a GPU, vLLM in a worker process)."""
    site = engine_site(run.config, run.learner, run.directory.root, version=run.version)
    return run.backend.engine(replace(site, seed=seed))  # type: ignore[return-value]  # every async engine streams


def thread_split(run: Run) -> tuple[int, int]:
    """(learner, producer) torch threads: the run's thread budget shared between the two loops rather than
    given whole to each (`torch.set_num_threads` sizes the calling thread's team; two teams of the full
    size on 2 cores made a step 25% slower)."""
    total = thread_budget(run.config.train.num_threads)
    producer = run.config.async_training.producer_threads or max(1, total // 2)
    return max(1, total - producer), producer


def build_producer(
    run: Run,
    hooks: AsyncHooks,
    pool: RewardPool | MajorityLabelPool,
    *,
    resumed: bool,
    verify: RewardPool | None = None,
    num_threads: int | None = None,
) -> RolloutProducer:
    """The producer, resumed where the newest checkpoint left it: responses in flight continued, outstanding
    prompts first, same RNG. It scores with `pool`, its own (the learner's pool serves held-out evaluation),
    and, with a shaped reward, decides correctness with `verify` as it scores (GRESO reads it there)."""
    config = run.config
    asynchronous = config.async_training
    engine = generation_engine(run, config.train.seed)
    settings = SchedulerSettings.of(config)
    if asynchronous.partial_rollouts and asynchronous.max_staleness == 1:
        logger.warning(
            "partial rollouts with async_training.max_staleness 1 leave no version of headroom: when the producer "
            "waits at its bound, every response a batch leaves unfinished is too old for the next one and "
            "restarts (partial/dropped_token_share); max_staleness 2 lets them continue"
        )
    checkpoint = latest_checkpoint(run.directory.checkpoints_dir) if resumed else None
    saved: dict[str, Any] = {}
    if checkpoint is not None:
        producer_rng, saved = load_producer_state(checkpoint)
        engine.set_rng_state(producer_rng)
    by_id = {p.id: p for p in run.sampler.prompts}
    producer = RolloutProducer(
        engine,
        run.encode,
        run.sampling,
        run.sampler,
        settings,
        score=submit_scores(pool, verify),
        version=run.version,
        last_index=config.train.steps,
        pending=[by_id[prompt_id] for prompt_id in saved.get("outstanding", [])],
        selective=settings.selective(config),
        speculative=SpeculativeRollouts.of(config),
        tree=TreeRollouts.of(config),
        episodes=run.episodes,
        on_generate=hooks.on_generate,
        num_threads=num_threads,
    )
    if "rollouts" in saved:
        producer.restore(saved["rollouts"], by_id)
    return producer


def async_step(
    run: Run, producer: RolloutProducer, timer: Stopwatch, hooks: AsyncHooks
) -> tuple[dict[str, float], int]:
    """One learner step on the next fresh batch (scored by the producer); returns its metrics and size."""
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
        if not samples:  # the whole batch was too old: this step needs one more than train.steps planned
            producer.skip_batch()
    age = staleness_metrics(samples, run.version, max_staleness)
    if hooks.on_update is not None:
        hooks.on_update(run.step + 1)
    metrics = {**batch.metrics, **rollout_metrics(samples, group_size), **learn(run, timer, samples), **age}
    producer.mark_trained([s.prompt for s in samples[::group_size]])
    metrics["async/dropped_stale_samples"] = float(dropped)
    return metrics, len(samples)


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
    """The run's checkpoint plus the producer's engine RNG, outstanding prompts and responses in flight; the
    sampler cursor is the producer's. The producer pauses between two decode steps, so its state is read at
    one moment without waiting for the generate call in progress."""
    with producer.paused():
        producer_state, producer_rng = producer.state_dict(), producer.engine_rng_state()
    write_checkpoint(run, trainer_state={"producer_rng": producer_rng}, pipeline_state=producer_state)


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    console: Console | None = None,
    on_sft_step: Callable[[int, dict[str, float]], None] | None = None,
    hooks: AsyncHooks | None = None,
) -> dict[str, Any]:
    """Run (or resume) an async training run; returns the summary also written to `summary.json`."""
    started = time.perf_counter()
    hooks = hooks or AsyncHooks()
    with ExitStack() as cleanup:  # closed in reverse (producer, pools, run), also when building a part fails
        run = build_run(config, resume=resume, sft_log=on_sft_step, engine="hf")
        cleanup.callback(run.close)
        pool = training_reward_pool(config.algorithm.reward, new_pool=run.backend.reward_pool)
        cleanup.callback(pool.close)
        verify = verifier_pool(config.algorithm.reward, new_pool=run.backend.reward_pool)
        if verify is not None:
            cleanup.callback(verify.close)
        learner_threads, producer_threads = thread_split(run)
        producer = build_producer(run, hooks, pool, resumed=resume, verify=verify, num_threads=producer_threads)
        cleanup.callback(producer.close)
        torch.set_num_threads(learner_threads)
        return training_loop(run, producer, hooks, console, started=started)


def training_loop(
    run: Run, producer: RolloutProducer, hooks: AsyncHooks, console: Console | None, *, started: float
) -> dict[str, Any]:
    """The learner's loop over `train.steps` batches from the producer; returns the run's summary."""
    config = run.config
    measure_before(run)
    samples_done = 0
    rl_started = time.perf_counter()
    timer = Stopwatch()
    producer.start()
    with progress_display(run, console) as progress, checkpoint_on_lost_roles(run, lambda: checkpoint(run, producer)):
        while run.step < config.train.steps:
            metrics, batch_samples = async_step(run, producer, timer, hooks)
            run.step += 1
            samples_done += batch_samples
            with timer("weight_sync"):
                weights = weight_snapshot(run.learner.engine_weights())
            if config.eval.every_steps and run.step % config.eval.every_steps == 0:
                metrics |= held_out(run)
            metrics |= timer.lap()
            metrics |= producer.lap()
            metrics |= backend_metrics(run, metrics["time/step"])
            metrics |= overlap_metrics(
                metrics["time/step"], metrics.get("time/wait_for_rollouts", 0.0), metrics["async/generate_seconds"]
            )
            metrics["perf/samples_per_second"] = batch_samples / max(metrics["time/step"], 1e-9)
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
