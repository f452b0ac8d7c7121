"""Learner tokens/s with one rank against two data-parallel ranks (DDP, FSDP2) on this machine, and the
communication a step of each costs.

The same scored batch (random token ids, rewards that differ within groups) goes through `prepare` + `update`:
one rank is a `Learner` in this process with all the threads; two ranks are a `LearnerGroup` of Ray actors over
gloo, one thread each. Communication per step is timed inside the ranks on flat fp32 buffers of the trained
parameters' size: DDP all-reduces the gradients once per step; FSDP2 all-gathers the parameters for every
forward and backward pass and reduce-scatters the gradients (counted per micro-batch pass, as it runs). A
matmul timed in the same run gives the machine's limit; the update's arithmetic is ~6 x parameters x tokens.
Configurations alternate for `--rounds` rounds (this 2-core machine is noisy); figures are medians.

On one 2-core machine two ranks cannot beat one rank with two threads (the same cores, plus the collectives):
what this measures is what data parallelism costs here, not a speed-up.

    python benchmarks/bench_learner_ranks.py [--steps 4] [--rounds 2] [--out benchmarks/results/learner_ranks.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

import ray
import torch

from reasonrl.config import load_config
from reasonrl.distributed.backend import LearnerSite, local_learner
from reasonrl.distributed.learner_group import LearnerGroup
from reasonrl.models.resolve import resolve_model_path

OUT = Path(__file__).parent / "results" / "learner_ranks.json"
GROUP, PROMPTS, PROMPT_TOKENS, RESPONSE_TOKENS = 4, 8, 48, 64
SETS = [
    "model.path=builtin:small",
    f"rollout.group_size={GROUP}",
    f"rollout.batch_size={GROUP * PROMPTS}",
    f"rollout.max_new_tokens={RESPONSE_TOKENS}",
    "train.micro_batch_tokens=2048",
    "train.lr=1e-5",
]


def scored_batch(vocab: int, seed: int) -> tuple[list[list[int]], list[list[int]], list[list[float]], list[float]]:
    """Prompts x GROUP responses of varied lengths and rewards that differ within every group."""
    rng = random.Random(seed)
    prompts, responses = [], []
    for _ in range(PROMPTS):
        prompt = [rng.randrange(4, vocab) for _ in range(PROMPT_TOKENS)]
        for _ in range(GROUP):
            prompts.append(prompt)
            responses.append(
                [rng.randrange(4, vocab) for _ in range(rng.randint(RESPONSE_TOKENS // 2, RESPONSE_TOKENS))]
            )
    rewards = [float(rng.random() < 0.5) for _ in responses]
    return prompts, responses, [[-1.0] * len(r) for r in responses], rewards


def matmul_gflops(threads: int) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    started = time.perf_counter()
    for _ in range(10):
        a @ b
    return 10 * 2 * 1024**3 / (time.perf_counter() - started) / 1e9


def communication_seconds(parameters: int, strategy: str, passes: int) -> float:
    """Run inside a rank: one step's collectives on flat fp32 buffers of the trained parameters' size."""
    import torch.distributed as dist

    world = dist.get_world_size()
    flat = torch.zeros(parameters - parameters % world)
    shard = torch.zeros(flat.numel() // world)
    dist.barrier()
    started = time.perf_counter()
    if strategy == "ddp":
        dist.all_reduce(flat)
    else:
        for _ in range(passes):  # parameters gathered for each forward and each backward pass
            dist.all_gather_into_tensor(flat, shard)
            dist.all_gather_into_tensor(flat, shard)
        dist.reduce_scatter_tensor(shard, flat)
    return time.perf_counter() - started


def timed_steps(learner: Any, batch: tuple, steps: int) -> list[float]:
    seconds = []
    for _ in range(steps + 1):  # the first step warms up (allocations, thread pools)
        started = time.perf_counter()
        prepared, _ = learner.prepare(*batch, GROUP)
        learner.update(prepared, GROUP)
        seconds.append(time.perf_counter() - started)
    return seconds[1:]


def run_config(name: str, site: LearnerSite, batch: tuple, steps: int, parameters: int) -> dict[str, Any]:
    if name == "1-rank":
        torch.set_num_threads(2)
        learner = local_learner(site)
        return {"step_seconds": timed_steps(learner, batch, steps), "communication_seconds": 0.0}
    strategy = name.split("-")[-1]
    config = load_config(
        None,
        [
            *SETS,
            "distributed.backend=ray",
            "distributed.learner.replicas=2",
            f"distributed.learner.strategy={strategy}",
        ],
    ).distributed
    group = LearnerGroup(site, config, None)
    try:
        seconds = timed_steps(group, batch, steps)
        passes = 2  # micro-batches per rank at this budget: the batch's ~3,600 tokens over 2 ranks of 2,048
        comm = [
            statistics.median(
                ray.get(
                    [
                        rank.__ray_call__.remote(lambda _, p=parameters: communication_seconds(p, strategy, passes))
                        for rank in group.ranks
                    ]
                )
            )
            for _ in range(3)
        ]
        return {"step_seconds": seconds, "communication_seconds": statistics.median(comm)}
    finally:
        group.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    config = load_config(None, SETS)
    folder = resolve_model_path(config.model.path)
    site = LearnerSite(folder, config.model, config.train, config.algorithm, "cpu", max_new_tokens=RESPONSE_TOKENS)
    probe = local_learner(site)
    parameters = sum(p.numel() for p in probe.trainable)
    batch = scored_batch(probe.model.config.vocab_size, seed=0)
    tokens = sum(len(p) + len(r) for p, r in zip(batch[0], batch[1], strict=True))
    del probe
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="reasonrl-bench")
    names = ["1-rank", "2-ranks-ddp", "2-ranks-fsdp2"]
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    peaks = []
    for _ in range(args.rounds):
        peaks.append({"1-thread": matmul_gflops(1), "2-threads": matmul_gflops(2)})
        for name in names:
            rounds[name].append(run_config(name, site, batch, args.steps, parameters))
    ray.shutdown()
    peak = statistics.median(p["2-threads"] for p in peaks)
    flops = 6 * parameters * tokens
    results: dict[str, Any] = {}
    for name in names:
        step = statistics.median(s for r in rounds[name] for s in r["step_seconds"])
        comm = statistics.median(r["communication_seconds"] for r in rounds[name])
        results[name] = {
            "step_seconds": step,
            "tokens_per_second": tokens / step,
            "communication_seconds_per_step": comm,
            "communication_share": comm / step,
            "gflops": flops / step / 1e9,
            "share_of_matmul_peak": flops / step / 1e9 / peak,
            "rounds": rounds[name],
        }
    baseline = results["1-rank"]["tokens_per_second"]
    for name in names:
        row = results[name]
        row["vs_1_rank"] = row["tokens_per_second"] / baseline
        print(
            f"{name:15s} {row['tokens_per_second']:8.0f} tokens/s  {row['vs_1_rank']:.2f}x 1 rank  "
            f"comm {row['communication_seconds_per_step'] * 1000:6.1f} ms/step ({row['communication_share']:.0%})  "
            f"{row['share_of_matmul_peak']:.0%} of the matmul peak"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "model": "builtin:small",
                "trained_parameters": parameters,
                "batch": {"rows": len(batch[0]), "tokens": tokens},
                "matmul_gflops_2_threads": peak,
                "matmul_rounds": peaks,
                "machine": platform.processor() or platform.machine(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
