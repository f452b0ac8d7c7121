"""What the sync and async pipelines share: the learner's step on scored samples and the loop's chores.

They differ in where the samples come from (`sync.rl_step` draws and scores them in the learner's turn,
`async_rl.async_step` takes them from the rollout producer), not in how to learn from them, nor in how a run
is evaluated, checkpointed, stopped or finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from reasonrl.distributed.errors import DistributedError, LearnerLost
from reasonrl.evaluation.heldout import evaluate
from reasonrl.pipelines.setup import Run
from reasonrl.rollout.samples import Sample
from reasonrl.tracking import ProgressDisplay, Stopwatch
from reasonrl.training.batch import Batch
from reasonrl.training.checkpoint import latest_checkpoint, save_checkpoint


class TrainingStopped(RuntimeError):
    """The run cannot go on (e.g. the loss kept being non-finite); a checkpoint was written first."""


def learn(run: Run, timer: Stopwatch, samples: list[Sample]) -> dict[str, float]:
    """Train on scored samples: prepare the batch, update, push the weights, dump rollouts; the metrics."""
    # Before the update: a batch whose rewards all failed carries no signal worth an update.
    run.reward_failures.observe(samples)
    learner = run.learner
    group_size = run.config.rollout.group_size
    batch, prepare_metrics = learner.prepare(
        [s.prompt_ids for s in samples],
        [s.response_ids for s in samples],
        [s.behaviour_logprobs for s in samples],
        [s.reward for s in samples],
        group_size,
        timer,
        tree_paths=[s.tree_path for s in samples] if samples and samples[0].tree_path else None,
        response_masks=[s.response_mask for s in samples] if any(s.response_mask for s in samples) else None,
    )
    with timer("update"):
        update_metrics = learner.update(batch, group_size)
    run.version += 1
    with timer("weight_sync"):
        run.engine.update_weights(learner.engine_weights(), run.version)
    if run.tracker.wants_rollouts(run.step + 1):
        run.tracker.dump_rollouts(run.step + 1, rollout_records(samples, batch))
    return {**prepare_metrics, **update_metrics, "train/policy_version": float(run.version)}


def rollout_records(samples: list[Sample], batch: Batch) -> list[dict[str, Any]]:
    """What a rollout dump keeps of each sample: its record, its first token's advantage and, with attention
    credit, its per-token credit weights (to show which tokens were amplified)."""
    advantages, credit = batch.advantages, batch.credit_weights
    assert advantages is not None, "Learner.prepare sets the advantages"
    records = []
    for row, sample in enumerate(samples):
        record = sample.to_record() | {"advantage": float(advantages[row, 0])}
        if credit is not None:
            record["credit_weights"] = credit[row, : len(sample.response_ids)].tolist()
        records.append(record)
    return records


def backend_metrics(run: Run, step_seconds: float) -> dict[str, float]:
    """The backend's per-role metrics (none locally) and the share of the step spent moving weights and data
    between processes (`distributed/moving_share`)."""
    metrics = run.backend.metrics()
    if metrics:
        moving = metrics.get("distributed/weight_push_seconds", 0.0) + metrics.get("distributed/transfer_seconds", 0.0)
        metrics["distributed/moving_share"] = moving / max(step_seconds, 1e-9)
    return metrics


@contextmanager
def checkpoint_on_lost_roles(run: Run, save: Callable[[], None]) -> Iterator[None]:
    """A role that keeps dying (`distributed.max_restarts`) or does not come back in time ends the run, after a
    checkpoint that `--resume` continues from: the learner's last step, and every group in flight with its
    tokens so far. A lost learner rank took its part of the learner's state with it: the run ends without one,
    and `--resume` continues from the last checkpoint written."""
    try:
        yield
    except (DistributedError, RuntimeError) as failure:
        error = failure if isinstance(failure, DistributedError) else failure.__cause__  # via the producer thread
        if not isinstance(error, DistributedError):
            raise
        if isinstance(error, LearnerLost):
            last = latest_checkpoint(run.directory.checkpoints_dir)
            where = f"the last checkpoint is {last}" if last is not None else "no checkpoint was written yet"
            raise TrainingStopped(f"{error}\n{where}; run again with --resume to continue from it") from error
        save()
        raise TrainingStopped(
            f"{error}\ncheckpoint saved at step {run.step} in {run.directory.checkpoints_dir}; fix the cause and "
            "run again with --resume"
        ) from error


def held_out(run: Run) -> dict[str, float]:
    metrics, _ = evaluate(
        run.eval_prompts,
        run.engine,
        run.encode,
        run.eval_pool or run.train_pool,
        run.eval_sampling,
        run.config.eval.n,
        episodes=run.episodes,
    )
    return metrics


def write_checkpoint(
    run: Run, *, trainer_state: dict[str, Any] | None = None, pipeline_state: dict[str, Any] | None = None
) -> None:
    """The learner, engine RNG, sampler cursor and counters, plus what the pipeline adds: `trainer_state`
    (binary; the async producer's engine RNG) and `pipeline_state` (JSON; the sync rollout scheduler's state,
    or the async producer's sampler cursor, outstanding prompts and responses in flight). A `sampler` entry
    in `pipeline_state` replaces the run's own cursor (the async producer reads it while paused)."""
    extra = pipeline_state or {}
    sampler = extra["sampler"] if "sampler" in extra else run.sampler.state_dict()
    save_checkpoint(
        run.directory.checkpoints_dir,
        run.step,
        save_learner=lambda folder: run.learner.save(folder, optimizer=run.config.checkpoint.save_optimizer),
        trainer_state={
            "engine_rng": run.engine.rng_state(),
            **({"anchor_rng": run.anchor.rng_state()} if run.anchor is not None else {}),
            **(trainer_state or {}),
        },
        pipeline_state={"sampler": sampler, "version": run.version, "history": run.history, **extra},
        keep_last=run.config.checkpoint.keep_last,
    )


def measure_before(run: Run) -> None:
    """Held-out accuracy before RL, once per run: a resumed run keeps its first measurement."""
    if "accuracy_before" not in run.history:
        before = held_out(run)
        run.history["accuracy_before"] = before["accuracy/eval"]
        run.tracker.log(0, before)


def stop_if_nonfinite(run: Run, save: Callable[[], None]) -> None:
    """After `train.max_nonfinite_steps` skipped steps in a row, save a checkpoint and stop the run."""
    if run.learner.nonfinite_in_a_row >= run.config.train.max_nonfinite_steps:
        save()
        raise TrainingStopped(
            f"the loss or gradient was non-finite for {run.learner.nonfinite_in_a_row} steps in a row "
            f"(train.max_nonfinite_steps); checkpoint saved at step {run.step} in "
            f"{run.directory.checkpoints_dir}. Lower train.lr, set train.grad_clip, or check the data"
        )


def finish(
    run: Run, *, started: float, samples_done: int, rl_seconds: float, save: Callable[[], None]
) -> dict[str, Any]:
    """The final evaluation, checkpoint and `summary.json`; returns the summary."""
    after = held_out(run)
    run.tracker.log(run.step, after)
    save()
    summary = {
        "accuracy_before": run.history["accuracy_before"],
        "accuracy_after": after["accuracy/eval"],
        "steps": run.step,
        "wall_seconds": time.perf_counter() - started,
        "samples_per_second": samples_done / rl_seconds if samples_done else 0.0,
        "eval_prompts": len(run.eval_prompts),
        "run_dir": str(run.directory.root),
    }
    run.tracker.write_summary(summary)
    return summary


def progress_display(run: Run, console: Console | None) -> ProgressDisplay:
    """The live display of a training loop, continuing from the run's step on resume."""
    config = run.config
    return ProgressDisplay(
        config.train.steps,
        samples_per_step=config.rollout.batch_size,
        start_step=run.step,
        live=config.logging.progress,
        console=console,
        every=config.logging.progress_every_steps,
    )
