"""Wall time of a whole `reasonrl eval` on the tiny model: 1,000 problems x 8 samples (goal: < 2 min on 2 cores).

Runs the same code path as the command: load the model, generate through the hf engine, score with the
task's verifier, extract and group answers, the `logprob` scorer, store samples.jsonl, then accuracy
against N for majority, best-of-N, weighted majority and Best-of-Majority with bootstrap intervals, and the
report with its plot.

    python benchmarks/bench_eval.py [--problems 1000] [--n 8] [--max-new-tokens 8]

Prints wall time and samples/s and writes benchmarks/results/eval.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from reasonrl.evaluation.settings import EvalSettings
from reasonrl.pipelines.evaluation import run_evaluation

RESULTS = Path(__file__).parent / "results" / "eval.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=1000)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    # Other processes on the machine share the cores; the load average says how much they took.
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        settings = EvalSettings(
            model="builtin:tiny",
            data=f"sum?size={args.problems}",
            n=args.n,
            max_new_tokens=args.max_new_tokens,
            format={"template": "plain"},
            out=folder,
        )
        start = time.perf_counter()
        report, _ = run_evaluation(settings, console=Console(stderr=True))
        wall = time.perf_counter() - start
    samples = args.problems * args.n
    timings = {name: round(value, 3) for name, value in report.timings.items()}
    result = {
        "benchmark": "reasonrl eval on builtin:tiny, default strategies, hf engine",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "problems": args.problems,
        "samples_per_problem": args.n,
        "max_new_tokens": args.max_new_tokens,
        "cpu_count": os.cpu_count(),
        "load_average_1min_before": round(load_before, 2),
        "python": platform.python_version(),
        "wall_seconds": round(wall, 3),
        "samples_per_second_end_to_end": round(samples / wall, 1),
        "goal_seconds": 120,
        "timings": timings,
        "headline": {name: round(value, 4) for name, value in report.headline().items()},
    }
    print(
        f"{args.problems} problems x {args.n} samples on builtin:tiny, {os.cpu_count()} cores, load {load_before:.2f}"
    )
    print(f"  wall {wall:.1f} s (goal < 120 s), {samples / wall:.1f} samples/s end to end")
    print(
        f"  generate {timings['generate_seconds']} s ({timings['samples_per_second']} samples/s), "
        f"score {timings['score_seconds']} s, strategies {timings['strategies_seconds']} s"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
