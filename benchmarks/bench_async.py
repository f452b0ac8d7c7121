"""Synchronous against asynchronous training on the built-in demo, from one warm-up checkpoint.

Every configuration starts RL from the demo's warm-up model (built once, shared with bench_ablation.py) and
runs the same steps and seeds; only `pipeline` and `async_training.max_staleness` change. Reported per
configuration: RL wall time (the sum of the steps' `time/step`, evaluations excluded), the wall time until
held-out accuracy (avg@4 at temperature 1, the demo's metric) first reaches the target, final accuracy,
samples/s, and for async the mean overlap share, learner idle time and staleness. Ratios are against the
sync run of the same seed, measured in the same invocation.

    python benchmarks/bench_async.py [--steps 300] [--eval-every 50] [--seeds 0 1] [--staleness 1 2]
        [--target 0.9] [--out benchmarks/results/async.json]

On 2 cores the two loops (one torch thread each) can overlap generation with updates, but the demo's
generation is only ~25% of a sync step, which bounds the possible speed-up well below 1.5x; the time split
in the JSON shows where the time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench_ablation import DEMO, build_warmup  # the same warm-up checkpoint as the ablation
from reasonrl.config import load_config
from reasonrl.pipelines import async_rl, sync
from reasonrl.tracking import read_metrics

OUT = Path(__file__).parent / "results" / "async.json"
WORK = Path(__file__).parents[1] / "runs" / "async_bench"  # git-ignored


def run_one(label: str, staleness: int | None, seed: int, warmup: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One run (sync when `staleness` is None); its timings and accuracy curve."""
    run_dir = WORK / f"{label}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    overrides = [
        f"model.path={warmup}",
        "train.warmup.steps=0",
        f"train.steps={args.steps}",
        f"train.seed={seed}",
        f"eval.every_steps={args.eval_every}",
        f"logging.run_dir={run_dir}",
        "logging.progress=false",
        "logging.rollout_dump_every=0",
    ]
    if staleness is not None:
        overrides += ["pipeline=async", f"async_training.max_staleness={staleness}"]
    started = time.perf_counter()
    summary = (sync.train if staleness is None else async_rl.train)(load_config(DEMO, overrides))
    rows = read_metrics(run_dir / "metrics.jsonl")
    wall, time_to_target, curve = 0.0, None, []
    for row in rows:
        wall += row.get("time/step") or 0.0
        if "accuracy/eval" in row and row["step"] > 0:
            curve.append({"step": row["step"], "rl_seconds": round(wall, 2), "accuracy": row["accuracy/eval"]})
            if time_to_target is None and row["accuracy/eval"] >= args.target:
                time_to_target = round(wall, 2)
    steps = [row for row in rows if "time/step" in row]

    def mean_of(key: str) -> float | None:
        values = [row[key] for row in steps if key in row]
        return round(statistics.fmean(values), 4) if values else None

    return {
        "label": label,
        "seed": seed,
        "max_staleness": staleness,
        "accuracy_before": summary["accuracy_before"],
        "accuracy_after": summary["accuracy_after"],
        "rl_seconds": round(wall, 2),
        "seconds_to_target": time_to_target,
        "samples_per_second": round(summary["samples_per_second"], 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "mean_step_split": {k: mean_of(k) for k in ("time/generate", "time/update", "time/wait_for_rollouts")},
        "async": {
            k: mean_of(k)
            for k in (
                "async/overlap_share",
                "async/training_idle_seconds",
                "async/staleness_mean",
                "async/staleness_max",
            )
        }
        if staleness is not None
        else None,
        "curve": curve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--staleness", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    warmup = build_warmup(WORK)
    configurations = [("sync", None)] + [(f"async-s{s}", s) for s in args.staleness]
    runs = [run_one(label, s, seed, warmup, args) for seed in args.seeds for label, s in configurations]
    table = []
    for label, _ in configurations:
        mine = [r for r in runs if r["label"] == label]
        ratios = [
            next(r["rl_seconds"] for r in runs if r["label"] == "sync" and r["seed"] == m["seed"]) / m["rl_seconds"]
            for m in mine
        ]
        table.append(
            {
                "label": label,
                "rl_seconds_mean": round(statistics.fmean(r["rl_seconds"] for r in mine), 1),
                "speedup_vs_sync_rl_seconds": round(statistics.fmean(ratios), 3),
                "seconds_to_target": [r["seconds_to_target"] for r in mine],
                "accuracy_after": [r["accuracy_after"] for r in mine],
                "samples_per_second_mean": round(statistics.fmean(r["samples_per_second"] for r in mine), 1),
            }
        )
    print(f"{'config':10} {'RL s':>8} {'speed-up':>9} {'s to target':>16} {'acc after':>18} {'samples/s':>10}")
    for row in table:
        print(
            f"{row['label']:10} {row['rl_seconds_mean']:8.1f} {row['speedup_vs_sync_rl_seconds']:9.3f} "
            f"{row['seconds_to_target']!s:>16} {row['accuracy_after']!s:>18} {row['samples_per_second_mean']:10.1f}"
        )
    result = {
        "benchmark": "sync vs async (max_staleness) on the demo task from one warm-up checkpoint",
        "command": "python benchmarks/bench_async.py " + " ".join(sys.argv[1:]),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "target_accuracy": args.target,
        "steps": args.steps,
        "table": table,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
