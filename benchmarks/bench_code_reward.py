"""Throughput of the `code` reward: solutions per second, 10 stdin tests each, through `RewardPool`, against an
unsandboxed baseline measured in the same run.

The workload is an APPS-style problem (read numbers, print a statistic) with 10 tests and a mix of solutions a
policy writes: correct ones in several styles, wrong ones, ones that raise, ones that print extra lines, and one
that never ends (it costs one time limit: the first timeout ends a solution's run, in both harnesses).
The sandboxed rows run the real `code` verifier (one bubblewrap sandbox per solution, one forked child per
test) in the reward pool's worker processes, at 2 workers and at 1. The baseline is what a harness without a
sandbox does: a plain `subprocess.run([python, "-c", program])` per test, on as many threads as workers, with
the same interpreter and time limit; it checks outputs the same way, so both must give the same scores.

    python benchmarks/bench_code_reward.py [--solutions 96] [--workers 2]

Prints solutions/s for each and the ratios, and writes benchmarks/results/code_reward.json. Goal: >= 15
solutions/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reasonrl.data.records import Prompt
from reasonrl.rewards import RewardPool
from reasonrl.sandbox import isolation

RESULTS = Path(__file__).parent / "results" / "code_reward.json"
TESTS = 10
TIME_LIMIT = 2.0  # seconds per test, the `code` verifier's default
GOAL = 15.0
SLOW = "n = int(input())\nwhile True:\n    n += 1\n"

SOLUTIONS = {
    "correct_loop": "n = int(input())\nxs = list(map(int, input().split()))\ntotal = 0\nfor x in xs:\n"
    "    total += x * x\nprint(total % 1000003, max(xs) - min(xs))\n",
    "correct_stdin": "import sys\ndata = sys.stdin.read().split()\nxs = [int(t) for t in data[1:]]\n"
    "print(sum(x * x for x in xs) % 1000003, max(xs) - min(xs))\n",
    "correct_function": "def solve(xs):\n    return sum(x * x for x in xs) % 1000003, max(xs) - min(xs)\n\n"
    "def main():\n    input()\n    a, b = solve(list(map(int, input().split())))\n    print(a, b)\n\nmain()\n",
    "wrong_off_by_one": "n = int(input())\nxs = list(map(int, input().split()))\n"
    "print(sum(x * x for x in xs[1:]) % 1000003, max(xs) - min(xs))\n",
    "wrong_no_modulo": "n = int(input())\nxs = list(map(int, input().split()))\n"
    "print(sum(x * x for x in xs), max(xs) - min(xs))\n",
    "raises": "n = int(input())\nxs = list(map(int, input().split()))\nprint(xs[n])\n",
    "extra_output": "n = int(input())\nxs = list(map(int, input().split()))\nprint('debug', n)\n"
    "print(sum(x * x for x in xs) % 1000003, max(xs) - min(xs))\n",
}


def make_reference(rng: random.Random) -> dict[str, list[str]]:
    """10 tests of the problem, from 1 to 300 numbers each."""
    inputs, outputs = [], []
    for _ in range(TESTS):
        xs = [rng.randint(-10_000, 10_000) for _ in range(rng.randint(1, 300))]
        inputs.append(f"{len(xs)}\n{' '.join(map(str, xs))}\n")
        outputs.append(f"{sum(x * x for x in xs) % 1000003} {max(xs) - min(xs)}\n")
    return {"inputs": inputs, "outputs": outputs}


def baseline_score(python: str, program: str, reference: dict[str, list[str]]) -> float:
    """The unsandboxed harness: a fresh interpreter per test, output compared token by token, and the first
    timeout ends the run (the sandbox's rule, so both do the same work)."""
    passed = 0
    for stdin, expected in zip(reference["inputs"], reference["outputs"], strict=True):
        try:
            done = subprocess.run(
                [python, "-c", program], input=stdin, capture_output=True, text=True, timeout=TIME_LIMIT
            )
        except subprocess.TimeoutExpired:
            break
        passed += done.returncode == 0 and done.stdout.split() == expected.split()
    return passed / len(reference["inputs"])


def pooled(prompts: list[Prompt], responses: list[str], workers: int) -> tuple[list[float], float, float]:
    """Scores through a reward pool of `workers` processes, its seconds, and its start-up seconds."""
    start = time.perf_counter()
    with RewardPool(workers=workers, timeout_seconds=60.0) as pool:
        pool.score(prompts[:workers], responses[:workers])  # workers up, verifier built, sandbox probed
        startup = time.perf_counter() - start
        start = time.perf_counter()
        results = pool.score(prompts, responses)
        seconds = time.perf_counter() - start
    errors = [r.error for r in results if r.error]
    if errors:
        raise SystemExit(f"the code reward failed: {errors[:3]}")
    return [r.reward for r in results], seconds, startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solutions", type=int, default=96)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    found = isolation()
    rng = random.Random(args.seed)
    names = list(SOLUTIONS)
    references, programs = [], []
    for index in range(args.solutions):
        references.append(make_reference(rng))
        programs.append(SLOW if index == args.solutions // 2 else SOLUTIONS[names[index % len(names)]])
    options = {"verifier_options": {"timeout_seconds": TIME_LIMIT}}
    prompts = [
        Prompt(id=str(i), answer=json.dumps(ref), task="code", text="problem", meta=options)
        for i, ref in enumerate(references)
    ]
    responses = [f"Here is my solution.\n```python\n{program}```\n" for program in programs]

    sandboxed, seconds, startup = pooled(prompts, responses, args.workers)
    single, single_seconds, single_startup = pooled(prompts, responses, 1)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.workers) as threads:
        jobs = zip(programs, references, strict=True)
        baseline = list(threads.map(lambda job: baseline_score(found.python, *job), jobs))
    baseline_seconds = time.perf_counter() - start

    rate = args.solutions / seconds
    report = {
        "benchmark": "code reward (bubblewrap sandbox, fork per test) through RewardPool vs unsandboxed subprocesses",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "isolation": found.describe(),
        "solutions": args.solutions,
        "tests_per_solution": TESTS,
        "time_limit_seconds": TIME_LIMIT,
        "slow_solutions": 1,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "load_average_1min_before": round(load_before, 2),
        "python": platform.python_version(),
        "sandbox_python": found.python,
        "sandboxed_seconds": round(seconds, 3),
        "sandboxed_solutions_per_second": round(rate, 1),
        "sandboxed_ms_per_solution_per_worker": round(1000 * seconds * args.workers / args.solutions, 1),
        "pool_startup_seconds": round(startup, 3),
        "sandboxed_1_worker_solutions_per_second": round(args.solutions / single_seconds, 1),
        "pool_startup_seconds_1_worker": round(single_startup, 3),
        "baseline_seconds": round(baseline_seconds, 3),
        "baseline_solutions_per_second": round(args.solutions / baseline_seconds, 1),
        "speedup_sandboxed_over_baseline": round(baseline_seconds / seconds, 2),
        "scaling_2_workers_over_1": round(single_seconds / seconds, 2),
        "mean_score": round(sum(sandboxed) / len(sandboxed), 4),
        "scores_agree_with_baseline": sandboxed == baseline and single == baseline,
        "goal_solutions_per_second": GOAL,
        "goal_met": rate >= GOAL,
    }
    print(
        f"{args.solutions} solutions x {TESTS} stdin tests, {args.workers} workers, {os.cpu_count()} cores, load "
        f"{load_before:.2f}\n  isolation: {found.describe()}"
    )
    print(
        f"  sandboxed, {args.workers} workers: {report['sandboxed_solutions_per_second']:>6} solutions/s "
        f"({seconds:.2f} s; {report['sandboxed_ms_per_solution_per_worker']} ms per solution per worker)"
    )
    print(
        f"  sandboxed, 1 worker:  {report['sandboxed_1_worker_solutions_per_second']:>6} solutions/s "
        f"({single_seconds:.2f} s); {args.workers} workers = {report['scaling_2_workers_over_1']}x"
    )
    print(
        f"  unsandboxed subprocess per test, {args.workers} threads: {report['baseline_solutions_per_second']:>6} "
        f"solutions/s ({baseline_seconds:.2f} s)"
    )
    print(
        f"  sandboxed / baseline: {report['speedup_sandboxed_over_baseline']}x; scores agree: "
        f"{report['scores_agree_with_baseline']}; mean score {report['mean_score']}"
    )
    print(f"  goal >= {GOAL} solutions/s: {'met' if report['goal_met'] else 'NOT met'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
