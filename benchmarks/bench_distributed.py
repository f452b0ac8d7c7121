"""The Ray backend against the local one: steady-state step time on the demo (goal <= 1.10x local, start-up
reported apart), and 2 engine replicas against 1 on the longtail recipe.

Every configuration is one `reasonrl train` process (its own Ray instance for Ray runs), without the SFT
warm-up and mid-run evaluation so the steps are what is timed. Steady state = the median `time/step` after
the first 3 steps; start-up = the process's wall time minus its steps (imports, Ray, actors, the first and
last held-out evaluation). A matmul timed in the same run gives the machine's state.

Configurations run interleaved for `--rounds` rounds (this 2-core machine is noisy); each figure is the
median over rounds, with every round's value kept in the JSON.

    python benchmarks/bench_distributed.py [--steps 40] [--rounds 2] [--out benchmarks/results/distributed.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

RECIPES = Path(__file__).parents[1] / "src" / "reasonrl" / "recipes"
OUT = Path(__file__).parent / "results" / "distributed.json"
WORK = Path(__file__).parents[1] / "runs" / "distributed_bench"  # git-ignored

COMMON = ["train.sft.steps=0", "eval.every_steps=0", "eval.max_prompts=32", "logging.progress=false"]
RAY = ["distributed.backend=ray"]
CONFIGS: dict[str, tuple[str, list[str]]] = {
    "demo-local": ("demo.yaml", []),
    "demo-ray": ("demo.yaml", RAY),
    "longtail-local": ("longtail.yaml", []),
    "longtail-ray-1": ("longtail.yaml", [*RAY, "distributed.engine.cpus=1"]),
    "longtail-ray-2": ("longtail.yaml", [*RAY, "distributed.engine.replicas=2", "distributed.engine.cpus=1"]),
}


def run_one(name: str, steps: int) -> dict[str, Any]:
    recipe, overrides = CONFIGS[name]
    run_dir = WORK / name
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "reasonrl", "train", str(RECIPES / recipe), "--run-dir", str(run_dir)]
    for override in [*COMMON, f"train.steps={steps}", *overrides]:
        command += ["--set", override]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "time/step" in r]
    steady = rows[3:]

    def median(key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in steady)

    result = {
        "recipe": recipe,
        "overrides": overrides,
        "wall_seconds": wall,
        "startup_seconds": wall - sum(r["time/step"] for r in rows),
        "step_seconds": median("time/step"),
        "generate_seconds": median("time/generate"),
        "weight_sync_seconds": median("time/weight_sync"),
    }
    if overrides:
        result["moving_share"] = median("distributed/moving_share")
        result["engine_tokens_per_second"] = [
            median(f"distributed/engine{i}/tokens_per_second")
            for i in range(8)
            if f"distributed/engine{i}/pid" in steady[0]
        ]
    return result


def over_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each number's median over the rounds; `rounds` keeps every round's result."""
    merged: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, float):
            merged[key] = statistics.median(run[key] for run in runs)
        else:
            merged[key] = value
    merged["rounds"] = runs
    return merged


def matmul_gflops() -> float:
    """bf16 matmul throughput right now (the hardware reference of this run)."""
    a = torch.randn(1024, 1024, dtype=torch.bfloat16)
    a @ a
    started = time.perf_counter()
    for _ in range(20):
        a @ a
    return 20 * 2 * 1024**3 / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    flops_before = matmul_gflops()
    rounds = [{name: run_one(name, args.steps) for name in args.configs} for _ in range(args.rounds)]
    results = {name: over_rounds([r[name] for r in rounds]) for name in args.configs}
    flops_after = matmul_gflops()
    for name, r in results.items():
        print(
            f"{name:>15}: step {r['step_seconds'] * 1000:7.1f} ms (generate {r['generate_seconds'] * 1000:6.1f}), "
            f"start-up {r['startup_seconds']:5.1f} s"
        )
    ratios = {}
    if {"demo-local", "demo-ray"} <= results.keys():
        ratios["demo_ray_over_local_step"] = results["demo-ray"]["step_seconds"] / results["demo-local"]["step_seconds"]
        ratios["demo_ray_extra_startup_seconds"] = (
            results["demo-ray"]["startup_seconds"] - results["demo-local"]["startup_seconds"]
        )
        print(f"demo: Ray / local steady-state step = {ratios['demo_ray_over_local_step']:.2f}x (goal <= 1.10x)")
    if {"longtail-ray-1", "longtail-ray-2"} <= results.keys():
        one, two = results["longtail-ray-1"], results["longtail-ray-2"]
        ratios["longtail_2_over_1_replicas_generate_speedup"] = one["generate_seconds"] / two["generate_seconds"]
        ratios["longtail_2_over_1_replicas_step_speedup"] = one["step_seconds"] / two["step_seconds"]
        print(
            f"longtail: 2 replicas vs 1: generate {ratios['longtail_2_over_1_replicas_generate_speedup']:.2f}x, "
            f"step {ratios['longtail_2_over_1_replicas_step_speedup']:.2f}x faster"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": platform.processor() or platform.machine(),
        "steps": args.steps,
        "rounds": args.rounds,
        "bf16_matmul_gflops": [flops_before, flops_after],
        "ratios": ratios,
        **results,
    }
    args.out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
