"""Throughput of the math verifier through `RewardPool` against serial in-process scoring.

Scores synthetic GSM8K-style responses (half right, half wrong; answers boxed, "The answer is ...",
`#### ...`, with and without thousands commas, a third of them needing math-verify's LaTeX parser) with the
`math` verifier, first through a pool of worker
processes, then serially in this process, and checks that both give the same rewards. Gold answers come
from ../shared/data/gsm8k/test.jsonl (beside the repository) when that file exists, else from a seeded generator.

    python benchmarks/bench_reward_pool.py [--samples 10000] [--workers 2]

Prints samples/s for both and their ratio, and writes benchmarks/results/reward_pool.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from reasonrl.data.records import Prompt
from reasonrl.rewards import RewardPool

GSM8K_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"
RESULTS = Path(__file__).parent / "results" / "reward_pool.json"


def gold_answers(count: int, rng: random.Random) -> tuple[list[Decimal], str]:
    """`count` numeric gold answers (cycling through GSM8K's when available) and where they came from."""
    if GSM8K_TEST.is_file():
        with GSM8K_TEST.open() as rows:
            texts = [json.loads(row)["answer"].rpartition("####")[2].strip().replace(",", "") for row in rows]
        golds = [Decimal(text) for text in texts if _is_decimal(text)]
        return [golds[i % len(golds)] for i in range(count)], str(GSM8K_TEST)
    return [Decimal(rng.choice([rng.randint(0, 100), rng.randint(100, 100_000)])) for _ in range(count)], "generated"


def _is_decimal(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def spell(value: Decimal, rng: random.Random) -> str:
    """A number as a model might write it: with thousands commas sometimes, as a decimal sometimes."""
    if value == value.to_integral_value() and abs(value) >= 1000 and rng.random() < 0.5:
        return f"{value:,}"
    if value == value.to_integral_value() and rng.random() < 0.1:
        return f"{value}.0"
    return str(value)


def response_for(gold: Decimal, rng: random.Random) -> str:
    """A few lines of arithmetic "reasoning" ending in a right or wrong final answer in one of six styles.

    Four styles end in a plain number (math.py settles those without math-verify, as most GSM8K answers
    are); two need math-verify's parser: a LaTeX unit, and a fraction that only simplifies to the number.
    """
    answer = gold if rng.random() < 0.5 else gold + rng.choice([-10, -1, 1, 2, 7])
    steps = [f"{rng.randint(2, 90)} + {rng.randint(2, 90)} = {rng.randint(4, 180)}" for _ in range(rng.randint(1, 4))]
    reasoning = "Let me work it out.\n" + "\n".join(f"Step {i + 1}: {step}." for i, step in enumerate(steps))
    shown = spell(answer, rng)
    ending = rng.choice(
        [
            f"\nSo the final answer is $\\boxed{{{shown}}}$.",
            f"\nThe answer is {shown}.",
            f"\n#### {shown}",
            f"\nTherefore we get \\boxed{{{shown}}} dollars.",
            f"\nSo she pays \\boxed{{{shown} \\text{{ dollars}}}}.",
            f"\nThe answer is $\\frac{{{2 * answer}}}{{2}}$.",
        ]
    )
    return reasoning + ending


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    # Other processes on the machine share the cores; the load average says how much they took.
    load_before = os.getloadavg()[0]
    rng = random.Random(args.seed)
    golds, source = gold_answers(args.samples, rng)
    prompts = [Prompt(id=str(i), answer=str(gold), task="math", text="question") for i, gold in enumerate(golds)]
    responses = [response_for(gold, rng) for gold in golds]

    start = time.perf_counter()
    with RewardPool(workers=args.workers, timeout_seconds=10.0) as pool:
        pool.score(prompts[:1], responses[:1])  # waits for the workers to be up and warm
        startup = time.perf_counter() - start
        start = time.perf_counter()
        pooled = pool.score(prompts, responses)
        pool_seconds = time.perf_counter() - start

    with RewardPool(workers=0, timeout_seconds=10.0) as serial_pool:
        start = time.perf_counter()
        serial = serial_pool.score(prompts, responses)
        serial_seconds = time.perf_counter() - start

    rewards = [result.reward for result in pooled]
    agree = rewards == [result.reward for result in serial]
    errors = sum(result.error is not None for result in pooled)
    report = {
        "benchmark": "math verifier through RewardPool vs serial in-process scoring",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "samples": args.samples,
        "gold_answers": source,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "load_average_1min_before": round(load_before, 2),
        "python": platform.python_version(),
        "pool_startup_seconds": round(startup, 3),
        "pool_seconds": round(pool_seconds, 3),
        "pool_samples_per_second": round(args.samples / pool_seconds, 1),
        "pool_total_seconds_with_startup": round(startup + pool_seconds, 3),
        "serial_seconds": round(serial_seconds, 3),
        "serial_samples_per_second": round(args.samples / serial_seconds, 1),
        "speedup_pool_over_serial": round(serial_seconds / pool_seconds, 2),
        "mean_reward": round(sum(rewards) / len(rewards), 4),
        "errors": errors,
        "pool_and_serial_agree": agree,
    }
    setup = f"{args.workers} workers, {os.cpu_count()} cores, load {load_before:.2f}"
    print(f"{args.samples} samples, math verifier, {setup}")
    pool_rate, serial_rate = report["pool_samples_per_second"], report["serial_samples_per_second"]
    print(f"  pool:   {pool_rate:>8} samples/s  ({pool_seconds:.2f} s + start-up {startup:.2f} s)")
    print(f"  serial: {serial_rate:>8} samples/s  ({serial_seconds:.2f} s)")
    ratio, mean = report["speedup_pool_over_serial"], report["mean_reward"]
    print(f"  ratio:  {ratio}x  mean reward {mean}  errors {errors}")
    print(f"  pool and serial rewards agree: {agree}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
