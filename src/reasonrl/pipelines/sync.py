"""Synchronous RL: generate, score, compute advantages, update, push weights — in that order, every step."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from reasonrl.config import RunConfig
from reasonrl.pipelines.setup import Run, build_run
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
from reasonrl.rollout.batches import SyncRollouts
from reasonrl.rollout.collect import PendingScores, submit_scores
from reasonrl.rollout.metrics import rollout_metrics
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.scheduler import SchedulerSettings
from reasonrl.rollout.speculative import SpeculativeRollouts
from reasonrl.rollout.tree import TreeRollouts
from reasonrl.tracking import Stopwatch
from reasonrl.training.checkpoint import latest_checkpoint, load_pipeline_state


def sync_rollouts(run: Run, timer: Stopwatch, *, resume: bool = False) -> SyncRollouts:
    """The run's batches: the async pipeline's rollout scheduler at staleness 0, on the run's own engine, so
    dynamic sampling and GRESO follow the same rules in both pipelines. Generation and scoring are timed as
    `generate` and `reward`. With `resume`, the newest checkpoint's scheduler state comes back (groups drawn
    for a later batch, the keep rate, the GRESO history)."""
    settings = SchedulerSettings.of(run.config)

    submit = submit_scores(run.train_pool, run.eval_pool)

    def score(samples: list[Sample]) -> PendingScores:
        with timer("reward"):  # scored in line: nothing else is left to do until the rewards are in
            scores = submit(samples)
            scores.result()
        return scores

    rollouts = SyncRollouts(
        run.engine,
        run.encode,
        run.sampling,
        run.sampler,
        settings,
        score=score,
        selective=settings.selective(run.config),
        speculative=SpeculativeRollouts.of(run.config),
        tree=TreeRollouts.of(run.config),
        episodes=run.episodes,
        engine_turn=lambda: timer("generate"),
    )
    checkpoint = latest_checkpoint(run.directory.checkpoints_dir) if resume else None
    if checkpoint is not None:
        saved = load_pipeline_state(checkpoint)
        if "rollouts" in saved:  # older checkpoints: nothing was kept between steps
            rollouts.load_state_dict(saved["rollouts"], {p.id: p for p in run.sampler.prompts})
    return rollouts


def rl_step(run: Run, rollouts: SyncRollouts, timer: Stopwatch) -> dict[str, float]:
    """One RL step on the next batch; returns its metrics. The rollout statistics cover every group scored
    for the batch, also those dynamic sampling dropped or kept for a later batch; the scheduler's own metrics
    are the async pipeline's (generate calls, tokens, dynamic sampling, GRESO), less its reward seconds,
    which are `time/reward`."""
    batch = rollouts.next_batch(run.version)
    scored = rollout_metrics(batch.scored, run.config.rollout.group_size)
    produced = {k: v for k, v in batch.metrics.items() if k != "rollout/reward_seconds"}
    return {**scored, **produced, **learn(run, timer, batch.samples)}


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    console: Console | None = None,
    on_sft_step: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a whole training run; returns the summary also written to `summary.json`."""
    started = time.perf_counter()
    run = build_run(config, resume=resume, sft_log=on_sft_step)
    try:
        measure_before(run)
        samples_done = 0
        rl_started = time.perf_counter()
        timer = Stopwatch()
        rollouts = sync_rollouts(run, timer, resume=resume)

        def save() -> None:
            write_checkpoint(run, pipeline_state={"rollouts": rollouts.state_dict()})

        with progress_display(run, console) as progress, checkpoint_on_lost_roles(run, save):
            while run.step < config.train.steps:
                metrics = rl_step(run, rollouts, timer)
                run.step += 1
                samples_done += config.rollout.batch_size
                if config.eval.every_steps and run.step % config.eval.every_steps == 0:
                    metrics |= held_out(run)
                metrics |= timer.lap()
                metrics |= backend_metrics(run, metrics["time/step"])
                metrics["perf/samples_per_second"] = config.rollout.batch_size / max(metrics["time/step"], 1e-9)
                run.tracker.log(run.step, metrics)
                progress.update(run.step, metrics)
                stop_if_nonfinite(run, save)
                if config.checkpoint.every_steps and run.step % config.checkpoint.every_steps == 0:
                    save()
        rl_seconds = time.perf_counter() - rl_started
        return finish(run, started=started, samples_done=samples_done, rl_seconds=rl_seconds, save=save)
    finally:
        run.close()
