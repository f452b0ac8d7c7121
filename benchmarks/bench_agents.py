"""Agents that learn: the calculator agent against the same model without tools, and the search agent against
its own warm-up.

Each configuration is a recipe run end to end (`reasonrl train`, warm-up included) with its held-out accuracy
measured greedily on 200 (calculator) / 100 (search) held-out prompts before RL (= after the warm-up) and after
RL. `no-tools` is the calculator recipe with `rollout.environment` removed: the warm-up then learns bare
answers (`84*15=` -> `1260`) and RL trains single-turn responses, the same steps, data and seed.

    python benchmarks/bench_agents.py [--configs tools no-tools search] [--out benchmarks/results/agents.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RECIPES = Path(__file__).parents[1] / "src" / "reasonrl" / "recipes"
OUT = Path(__file__).parent / "results" / "agents.json"
WORK = Path(__file__).parents[1] / "runs" / "agents_bench"  # git-ignored

NO_TOOLS = [
    "rollout.environment.name=null",
    "rollout.environment.max_turns=4",
    "rollout.environment.max_turn_tokens=null",
    "rollout.environment.max_tool_response_tokens=128",
    "rollout.max_new_tokens=8",
]
CONFIGS: dict[str, tuple[str, list[str]]] = {
    "tools": ("calculator-agent.yaml", []),
    "no-tools": ("calculator-agent.yaml", NO_TOOLS),
    "search": ("search-agent.yaml", []),
}


def run_one(name: str) -> dict[str, Any]:
    recipe, overrides = CONFIGS[name]
    run_dir = WORK / name
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "reasonrl", "train", str(RECIPES / recipe), "--run-dir", str(run_dir)]
    for override in [*overrides, "logging.progress=false"]:
        command += ["--set", override]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "episode/turns_mean" in r or "reward/mean" in r][-1]
    return {
        "recipe": recipe,
        "overrides": overrides,
        "warmup_accuracy": summary["accuracy_before"],
        "final_accuracy": summary["accuracy_after"],
        "wall_seconds": time.perf_counter() - started,
        "last_step": {k: v for k, v in last.items() if k.startswith(("episode/", "accuracy/", "reward/"))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = {name: run_one(name) for name in args.configs}
    for name, result in results.items():
        print(f"{name:>9}: warm-up {result['warmup_accuracy']:.3f} -> after RL {result['final_accuracy']:.3f}")
    if "tools" in results and "no-tools" in results:
        gain = results["tools"]["final_accuracy"] - results["no-tools"]["final_accuracy"]
        print(f"calculator agent vs the same model without tools: {gain * 100:+.1f} points (goal >= +20)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), **results}, indent=2))


if __name__ == "__main__":
    main()
