"""Sync against async training, partial rollouts and selective rollouts, from one warm-up checkpoint.

Two measurements, both on a recipe's warm-up model (built once under runs/, shared by every run):

1. **Rollout throughput** (`--rollout-batches`): the async scheduler produces batches from fixed weights,
   with and without partial rollouts (APRIL). Nothing trains, so the ratio is the rollout effect alone:
   samples and tokens per second of generation, the same prompts for both, alternating repeats.
2. **Training runs** (`--configs`): the same steps and seeds per configuration; reported are RL wall time
   (the sum of the steps' `time/step`, evaluations excluded), the wall time until held-out accuracy first
   reaches `--target`, final accuracy, samples/s, generation seconds, and for async the overlap, learner
   idle time and staleness. Ratios are against the sync run of the same seed in the same invocation.

    python benchmarks/bench_async.py [--recipe longtail] [--steps 300] [--eval-every 50] [--seeds 0]
        [--configs sync async-s1 ...] [--rollout-batches 40] [--rollout-prompts 1 2 4 8] [--target 0.42]
        [--out benchmarks/results/async.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from reasonrl.config import load_config
from reasonrl.pipelines import async_rl, sync
from reasonrl.pipelines.setup import build_run
from reasonrl.rewards.majority_labels import training_reward_pool
from reasonrl.rollout.collect import score_samples
from reasonrl.rollout.scheduler import RolloutScheduler, SchedulerSettings
from reasonrl.tracking import read_metrics
from warmup import RECIPES, build_warmup

OUT = Path(__file__).parent / "results" / "async.json"
WORK = Path(__file__).parents[1] / "runs" / "async_bench"  # git-ignored

ASYNC = ["pipeline=async"]
CONFIGS: dict[str, list[str]] = {
    "sync": [],
    "sync-2threads": ["train.num_threads=2"],  # sync may use both cores for its kernels instead
    "async-s1": [*ASYNC, "async_training.max_staleness=1"],
    "async-s2": [*ASYNC, "async_training.max_staleness=2"],
    # Both loops on a 2-thread budget: the producer and the learner split it (async_training.producer_threads).
    "async-s1-2threads": [*ASYNC, "async_training.max_staleness=1", "train.num_threads=2"],
    "async-s1-partial": [*ASYNC, "async_training.max_staleness=1", "async_training.partial_rollouts=true"],
    "async-s2-partial": [*ASYNC, "async_training.max_staleness=2", "async_training.partial_rollouts=true"],
    "async-s1-dapo": [*ASYNC, "async_training.max_staleness=1", "algorithm.dynamic_sampling=true"],
    "async-s1-dapo-greso": [
        *ASYNC,
        "async_training.max_staleness=1",
        "algorithm.dynamic_sampling=true",
        "rollout.selective_rollouts=true",
    ],
}


def common_overrides(warmup: Path, run_dir: Path, seed: int) -> list[str]:
    return [
        f"model.path={warmup}",
        "train.sft.steps=0",
        f"train.seed={seed}",
        f"logging.run_dir={run_dir}",
        "logging.progress=false",
        "logging.rollout_dump_every=0",
    ]


def rollout_throughput(
    recipe: Path, warmup: Path, work: Path, batches: int, repeats: int, prompts_per_batch: list[int]
) -> list[dict[str, Any]]:
    """Samples/s of the async scheduler on fixed weights, whole batches against partial rollouts (2x
    over-provisioned, max_staleness 2), at each batch size: the same prompts for both, alternating order."""
    shutil.rmtree(work / "rollout-throughput", ignore_errors=True)
    config = load_config(recipe, [*common_overrides(warmup, work / "rollout-throughput", 0), "train.steps=0"])
    run = build_run(config)
    pool = training_reward_pool(config.algorithm.reward)
    group_size = config.rollout.group_size
    table = []
    try:
        for prompts in prompts_per_batch:
            results: dict[str, list[dict[str, float]]] = {"whole": [], "partial": []}
            for repeat in range(repeats):
                for mode in ("whole", "partial") if repeat % 2 == 0 else ("partial", "whole"):
                    engine = async_rl.generation_engine(run, seed=repeat)
                    run.sampler.load_state_dict({**run.sampler.state_dict(), "position": 0, "epoch": 0})
                    settings = SchedulerSettings(
                        prompts_per_batch=prompts,
                        group_size=group_size,
                        max_staleness=2,
                        partial_rollouts=mode == "partial",
                        overprovision=2.0,
                    )
                    scheduler = RolloutScheduler(
                        engine,
                        run.encode,
                        run.sampling,
                        settings,
                        score=lambda samples: score_samples(samples, pool),
                        draw=run.sampler.next_batch,
                        discard=lambda prompt: None,
                        lock=threading.Condition(),
                    )
                    samples = tokens = 0
                    started = time.perf_counter()
                    for index in range(batches):
                        engine.version = index  # a new version each batch, as in training (weights unchanged)
                        produced = scheduler.produce(index)
                        samples += len(produced.samples)
                        tokens += int(produced.metrics["rollout/generated_tokens"])
                    seconds = time.perf_counter() - started
                    results[mode].append(
                        {"seconds": seconds, "samples_per_second": samples / seconds, "generated_tokens": tokens}
                    )
            whole = statistics.fmean(r["samples_per_second"] for r in results["whole"])
            partial = statistics.fmean(r["samples_per_second"] for r in results["partial"])
            row = {
                "rows_per_batch": prompts * group_size,
                "whole_samples_per_second": round(whole, 1),
                "partial_samples_per_second": round(partial, 1),
                "partial_over_whole": round(partial / whole, 3),
                "repeats": results,
            }
            print(
                f"rollout throughput at {row['rows_per_batch']} rows: whole {row['whole_samples_per_second']}, "
                f"partial {row['partial_samples_per_second']} samples/s ({row['partial_over_whole']}x)",
                flush=True,
            )
            table.append(row)
    finally:
        pool.close()
        run.close()
    return table


def run_one(label: str, seed: int, recipe: Path, warmup: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One training run; its timings and accuracy curve."""
    run_dir = work / f"{label}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    overrides = [
        *common_overrides(warmup, run_dir, seed),
        f"train.steps={args.steps}",
        f"eval.every_steps={args.eval_every}",
        *CONFIGS[label],
    ]
    config = load_config(recipe, overrides)
    started = time.perf_counter()
    summary = (sync.train if config.pipeline == "sync" else async_rl.train)(config)
    rows = read_metrics(run_dir / "metrics.jsonl")
    wall, time_to_target, curve = 0.0, None, []
    for row in rows:
        wall += row.get("time/step") or 0.0
        if "accuracy/eval" in row and row["step"] > 0:
            curve.append({"step": row["step"], "rl_seconds": round(wall, 2), "accuracy": row["accuracy/eval"]})
            if time_to_target is None and row["accuracy/eval"] >= args.target:
                time_to_target = round(wall, 2)
    steps = [row for row in rows if "time/step" in row]

    def total(key: str) -> float:
        return round(sum(row.get(key, 0.0) for row in steps), 2)

    def mean_of(key: str) -> float | None:
        values = [row[key] for row in steps if key in row]
        return round(statistics.fmean(values), 4) if values else None

    generate_seconds = total("async/generate_seconds") if config.pipeline == "async" else total("time/generate")
    generated_tokens = total("rollout/generated_tokens")
    dropped_share = total("partial/dropped_tokens") / generated_tokens if generated_tokens else None
    return {
        "label": label,
        "seed": seed,
        "accuracy_before": summary["accuracy_before"],
        "accuracy_after": summary["accuracy_after"],
        "rl_seconds": round(wall, 2),
        "seconds_to_target": time_to_target,
        "samples_per_second": round(summary["samples_per_second"], 1),
        "generate_seconds": generate_seconds,
        "total_seconds": round(time.perf_counter() - started, 1),
        "mean_step_split": {k: mean_of(k) for k in ("time/generate", "time/update", "time/wait_for_rollouts")},
        "mean_step_seconds": mean_of("time/step"),
        # Generated tokens that partial rollouts' restarts threw away, over the whole run.
        "dropped_token_share": None if dropped_share is None else round(dropped_share, 4),
        "extra": {
            k: mean_of(k)
            for k in (
                "async/overlap_share",
                "async/training_idle_seconds",
                "async/staleness_mean",
                "partial/continued_samples",
                "partial/restarted_samples",
                "dynamic_sampling/dropped_groups",
                "greso/skipped_share",
                "policy/behaviour_ratio_p05",
                "policy/behaviour_ratio_p95",
            )
            if mean_of(k) is not None
        },
        "curve": curve,
    }


def summarise(runs: list[dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
    table = []
    for label in labels:
        mine = [r for r in runs if r["label"] == label]
        ratios = [
            next(r["rl_seconds"] for r in runs if r["label"] == "sync" and r["seed"] == m["seed"]) / m["rl_seconds"]
            for m in mine
            if any(r["label"] == "sync" and r["seed"] == m["seed"] for r in runs)
        ]
        table.append(
            {
                "label": label,
                "rl_seconds_mean": round(statistics.fmean(r["rl_seconds"] for r in mine), 1),
                "speedup_vs_sync_rl_seconds": round(statistics.fmean(ratios), 3) if ratios else None,
                "seconds_to_target": [r["seconds_to_target"] for r in mine],
                "accuracy_after": [r["accuracy_after"] for r in mine],
                "samples_per_second_mean": round(statistics.fmean(r["samples_per_second"] for r in mine), 1),
                "generate_seconds_mean": round(statistics.fmean(r["generate_seconds"] for r in mine), 1),
            }
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="longtail", help="a built-in recipe name or a YAML path")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rollout-batches", type=int, default=40, help="0 skips the rollout-throughput part")
    parser.add_argument("--rollout-repeats", type=int, default=2)
    parser.add_argument("--rollout-prompts", type=int, nargs="+", default=[1, 2, 4, 8], help="prompts per batch")
    parser.add_argument("--target", type=float, default=0.42)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    recipe = Path(args.recipe) if args.recipe.endswith(".yaml") else RECIPES / f"{args.recipe}.yaml"
    work = WORK / recipe.stem
    warmup = build_warmup(work, recipe)
    rollout = (
        rollout_throughput(recipe, warmup, work, args.rollout_batches, args.rollout_repeats, args.rollout_prompts)
        if args.rollout_batches
        else None
    )
    runs = [run_one(label, seed, recipe, warmup, work, args) for seed in args.seeds for label in args.configs]
    table = summarise(runs, args.configs)
    print(
        f"{'config':20} {'RL s':>7} {'vs sync':>8} {'s to target':>14} {'acc after':>12} {'samples/s':>10} {'gen s':>7}"
    )
    for row in table:
        print(
            f"{row['label']:20} {row['rl_seconds_mean']:7.1f} {row['speedup_vs_sync_rl_seconds']!s:>8} "
            f"{row['seconds_to_target']!s:>14} {row['accuracy_after']!s:>12} {row['samples_per_second_mean']:10.1f} "
            f"{row['generate_seconds_mean']:7.1f}"
        )
    result = {
        "benchmark": f"sync vs async, partial and selective rollouts on the {recipe.stem} recipe from one warm-up",
        "command": "python benchmarks/bench_async.py " + " ".join(sys.argv[1:]),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "target_accuracy": args.target,
        "steps": args.steps,
        "rollout_throughput": rollout,
        "table": table,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
