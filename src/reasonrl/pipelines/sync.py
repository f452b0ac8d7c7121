"""Synchronous RL: generate, score, compute advantages, update, push weights — in that order, every step."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from reasonrl.config import RunConfig
from reasonrl.pipelines.evaluate import evaluate
from reasonrl.pipelines.setup import Run, build_run
from reasonrl.rollout.collect import generate_samples, score_samples
from reasonrl.rollout.dynamic_sampling import keep_informative_groups
from reasonrl.rollout.metrics import rollout_metrics
from reasonrl.rollout.samples import Sample
from reasonrl.tracking import ProgressDisplay, Stopwatch
from reasonrl.training.batch import Batch
from reasonrl.training.checkpoint import save_checkpoint
from reasonrl.training.objective import attention_credit, compute_advantages, compute_returns, needs_reference


class TrainingStopped(RuntimeError):
    """The run cannot go on (e.g. the loss kept being non-finite); a checkpoint was written first."""


def draw_groups(run: Run, timer: Stopwatch, prompts: int) -> list[Sample]:
    """The next `prompts` prompts, `group_size` scored responses each."""
    chosen = run.sampler.next_batch(prompts)
    with timer("generate"):
        samples = generate_samples(chosen, run.config.rollout.group_size, run.engine, run.encode, run.sampling)
    with timer("reward"):
        score_samples(samples, run.train_pool, run.eval_pool)
    return samples


def rl_step(run: Run, timer: Stopwatch) -> dict[str, float]:
    """One RL step on the next batch of prompts; returns its metrics."""
    config, algorithm = run.config, run.config.algorithm
    group_size = config.rollout.group_size
    prompts = config.rollout.batch_size // group_size
    if algorithm.dynamic_sampling:
        filtered = keep_informative_groups(
            lambda count: draw_groups(run, timer, count),
            prompts,
            group_size,
            max_extra_prompts=algorithm.dynamic_sampling_max_extra_prompts,
            step=run.step + 1,
        )
        samples, generated, sampling_metrics = filtered.samples, filtered.generated, filtered.metrics
    else:
        samples = generated = draw_groups(run, timer, prompts)
        sampling_metrics = {}
    return {**rollout_metrics(generated, group_size), **sampling_metrics, **learn(run, timer, samples)}


def learn(run: Run, timer: Stopwatch, samples: list[Sample]) -> dict[str, float]:
    """Train on scored samples: log-probs, advantages, update, weight push, rollout dump; returns the metrics.

    Shared by the sync and async pipelines: they differ in where the samples come from, not in how to learn."""
    # Before the update: a batch whose rewards all failed carries no signal worth an update.
    run.reward_failures.observe(samples)
    learner, algorithm = run.learner, run.config.algorithm
    group_size = run.config.rollout.group_size
    rewards = [s.reward for s in samples]
    batch = Batch.from_ids([s.prompt_ids for s in samples], [s.response_ids for s in samples])
    batch.tensors["behaviour_logprobs"] = batch.padded([s.behaviour_logprobs for s in samples])
    with timer("logprobs"):
        if learner.needs_old_logprobs:
            batch.tensors["old_logprobs"] = learner.policy_logprobs(batch)
        if needs_reference(algorithm):
            batch.tensors["ref_logprobs"] = learner.reference_logprobs(batch)
    if learner.critic is not None:
        with timer("values"):
            batch.tensors |= learner.critic.evaluate(batch, group_size)
    credit_metrics: dict[str, float] = {}
    if algorithm.attention_credit.enabled:
        with timer("attention"):
            attention = learner.probe_attention(batch, algorithm.attention_credit.layers)
        batch.tensors["credit_weights"], credit_metrics = attention_credit(algorithm.attention_credit, batch, attention)
    batch.tensors["advantages"], advantage_metrics = compute_advantages(algorithm, rewards, batch, group_size)
    if learner.critic is not None:
        batch.tensors["returns"] = compute_returns(algorithm, rewards, batch, group_size)
    with timer("update"):
        update_metrics = learner.update(batch, group_size)
    run.version += 1
    with timer("weight_sync"):
        run.engine.update_weights(learner.engine_weights(), run.version)
    if run.tracker.wants_rollouts(run.step + 1):
        run.tracker.dump_rollouts(run.step + 1, rollout_records(samples, batch))
    return {
        **advantage_metrics,
        **credit_metrics,
        **update_metrics,
        "train/policy_version": float(run.version),
    }


def rollout_records(samples: list[Sample], batch: Batch) -> list[dict[str, Any]]:
    """What a rollout dump keeps of each sample: its record, its first token's advantage and, with attention
    credit, its per-token credit weights (to show which tokens were amplified)."""
    advantages, credit = batch.tensors["advantages"], batch.tensors.get("credit_weights")
    records = []
    for row, sample in enumerate(samples):
        record = sample.to_record() | {"advantage": float(advantages[row, 0])}
        if credit is not None:
            record["credit_weights"] = credit[row, : len(sample.response_ids)].tolist()
        records.append(record)
    return records


def held_out(run: Run) -> dict[str, float]:
    metrics, _ = evaluate(
        run.eval_prompts,
        run.engine,
        run.encode,
        run.eval_pool or run.train_pool,
        run.eval_sampling,
        run.config.eval.n,
    )
    return metrics


def checkpoint(run: Run) -> None:
    save_checkpoint(
        run.directory.checkpoints_dir,
        run.step,
        save_model=run.learner.save_model,
        trainer_state={"learner": run.learner.state_dict(), "engine_rng": run.engine.rng_state()},
        pipeline_state={"sampler": run.sampler.state_dict(), "version": run.version, "history": run.history},
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


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    console: Console | None = None,
    on_warmup_step: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a whole training run; returns the summary also written to `summary.json`."""
    started = time.perf_counter()
    run = build_run(config, resume=resume, warmup_log=on_warmup_step)
    try:
        measure_before(run)
        samples_done = 0
        rl_started = time.perf_counter()
        timer = Stopwatch()
        with progress_display(run, console) as progress:
            while run.step < config.train.steps:
                metrics = rl_step(run, timer)
                run.step += 1
                samples_done += config.rollout.batch_size
                if config.eval.every_steps and run.step % config.eval.every_steps == 0:
                    metrics |= held_out(run)
                metrics |= timer.lap()
                metrics["perf/samples_per_second"] = config.rollout.batch_size / max(metrics["time/step"], 1e-9)
                run.tracker.log(run.step, metrics)
                progress.update(run.step, metrics)
                stop_if_nonfinite(run, lambda: checkpoint(run))
                if config.checkpoint.every_steps and run.step % config.checkpoint.every_steps == 0:
                    checkpoint(run)
        rl_seconds = time.perf_counter() - rl_started
        return finish(
            run, started=started, samples_done=samples_done, rl_seconds=rl_seconds, save=lambda: checkpoint(run)
        )
    finally:
        run.close()
