"""Speculative rollouts (SPEC-RL, lenient and exact) and tree rollouts (TreePO) against plain GRPO rollouts, on a
workload whose prompts recur.

A small training set (default `caesar?size=128`: 16 steps of 8 prompts x 8 samples per epoch) trained for
several epochs from the long-tail recipe's supervised warm-up model (built once under runs/, shared by every
run), so every prompt after the first epoch has drafts. For each seed, every method trains the same steps;
reported per run: generated tokens and rollout seconds (the steps' `time/generate`, which holds the drafts'
verification and, in exact mode, the scoring of the cached distributions) over the run and until held-out
accuracy first reaches plain GRPO's final accuracy of the same seed, the final accuracy, and the reuse
metrics. Speed-ups are plain / method on the same seed in the same invocation (these machines are noisy).

    python benchmarks/bench_rollout_methods.py [--seeds 0 1] [--steps 96] [--eval-every 16]
        [--methods plain speculative speculative-exact tree] [--out benchmarks/results/rollout_methods.json]
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

from reasonrl.config import load_config
from reasonrl.pipelines import sync
from reasonrl.tracking import read_metrics
from warmup import RECIPES, build_warmup

OUT = Path(__file__).parent / "results" / "rollout_methods.json"
WORK = Path(__file__).parents[1] / "runs" / "rollout_methods_bench"  # git-ignored
RECIPE = RECIPES / "longtail.yaml"

METHODS: dict[str, list[str]] = {
    "plain": [],
    "speculative": ["rollout.speculative.enabled=true"],
    "speculative-exact": ["rollout.speculative.enabled=true", "rollout.speculative.mode=exact"],
    # Segments of 2 tokens: the caesar answers are ~5.5 tokens long (TreePO's 512 is for 7K-token responses).
    "tree": ["rollout.tree.enabled=true", "rollout.tree.segment_tokens=2", "algorithm.advantage=tree"],
}


def run_one(method: str, seed: int, warmup: Path, args: argparse.Namespace) -> dict[str, Any]:
    run_dir = WORK / f"{method}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    overrides = [
        f"model.path={warmup}",
        f"data.train={args.train}",
        "train.sft.steps=0",
        f"train.seed={seed}",
        f"train.steps={args.steps}",
        f"eval.every_steps={args.eval_every}",
        "eval.max_prompts=200",
        "rollout.engine=hf",
        f"logging.run_dir={run_dir}",
        "logging.progress=false",
        "logging.rollout_dump_every=0",
        "logging.plots=false",
        "logging.tensorboard=false",
        *METHODS[method],
    ]
    started = time.perf_counter()
    summary = sync.train(load_config(RECIPE, overrides))
    rows = read_metrics(run_dir / "metrics.jsonl")
    tokens, seconds, curve = 0.0, 0.0, []
    for row in rows:
        if "time/generate" in row:
            tokens += row["rollout/generated_tokens"]
            seconds += row["time/generate"]
        if "accuracy/eval" in row and row["step"] > 0:
            curve.append(
                {"step": row["step"], "accuracy": row["accuracy/eval"], "tokens": tokens, "seconds": round(seconds, 3)}
            )
    steps = [row for row in rows if "time/generate" in row]

    def mean_of(key: str) -> float | None:
        values = [row[key] for row in steps[args.steps // args.epochs :] if key in row]  # after the first epoch
        return round(statistics.fmean(values), 4) if values else None

    return {
        "method": method,
        "seed": seed,
        "accuracy_before": summary["accuracy_before"],
        "accuracy_after": summary["accuracy_after"],
        "generated_tokens": tokens,
        "rollout_seconds": round(seconds, 2),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "after_first_epoch": {
            k: mean_of(k)
            for k in (
                "speculative/reused_token_share",
                "speculative/fully_reused_share",
                "speculative/mean_cut",
                "speculative/verify_seconds",
                "speculative/cache_seconds",
                "tree/token_saving",
                "tree/fallbacks",
                "time/generate",
                "rollout/generated_tokens",
                "response_length/mean",
            )
        },
        "curve": curve,
    }


def reach(run: dict[str, Any], target: float) -> dict[str, Any] | None:
    """The first evaluation at or above `target`: tokens and rollout seconds spent until then."""
    return next((point for point in run["curve"] if point["accuracy"] >= target - 1e-9), None)


def compare(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each method against plain GRPO of the same seed."""
    rows = []
    for seed in sorted({r["seed"] for r in runs}):
        plain = next(r for r in runs if r["seed"] == seed and r["method"] == "plain")
        target = plain["accuracy_after"]
        plain_reach = reach(plain, target)
        for run in (r for r in runs if r["seed"] == seed):
            at = reach(run, target)
            row = {
                "method": run["method"],
                "seed": seed,
                "target_accuracy": target,
                "final_accuracy": run["accuracy_after"],
                "accuracy_vs_plain": round(run["accuracy_after"] - target, 4),
                "rollout_speedup": round(plain["rollout_seconds"] / run["rollout_seconds"], 3),
                "token_ratio": round(plain["generated_tokens"] / run["generated_tokens"], 3),
                "tokens_to_target": None if at is None else at["tokens"],
                "seconds_to_target": None if at is None else at["seconds"],
            }
            if at is not None and plain_reach is not None:
                row["speedup_to_target"] = round(plain_reach["seconds"] / max(at["seconds"], 1e-9), 3)
                row["token_ratio_to_target"] = round(plain_reach["tokens"] / max(at["tokens"], 1.0), 3)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=6, help="epochs in --steps (for the after-first-epoch means)")
    parser.add_argument("--eval-every", type=int, default=16)
    parser.add_argument("--train", default="caesar?size=128")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if "plain" not in args.methods:
        parser.error("--methods must include plain: every ratio is against it")
    warmup = build_warmup(WORK, RECIPE)
    runs = []
    for seed in args.seeds:
        for method in args.methods:
            run = run_one(method, seed, warmup, args)
            runs.append(run)
            print(
                f"{method:18s} seed {seed}: acc {run['accuracy_before']:.3f} -> {run['accuracy_after']:.3f}, "
                f"{run['generated_tokens']:.0f} generated tokens, rollout {run['rollout_seconds']:.1f} s, "
                f"reuse {run['after_first_epoch']['speculative/reused_token_share']}",
                flush=True,
            )
    table = compare(runs)
    for row in table:
        print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": "python benchmarks/bench_rollout_methods.py " + " ".join(sys.argv[1:]),
                "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
                "settings": {k: str(v) for k, v in vars(args).items()},
                "comparison": table,
                "runs": runs,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
