"""Run a learner on N gloo ranks in spawned processes (no Ray): the data-parallel arithmetic on its own.

`run_ranks(world, strategy, task, *args)` starts `world` processes, each building its `DataParallel` view and
calling `task(parallel, *args)`; rank 0's return value comes back. On a machine with CUDA the ranks use nccl,
one GPU each. The Ray learner group runs the same
`Learner` code in actors; these tests check the numbers, the group's tests check the plumbing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from reasonrl.training.parallel import DataParallel


def _rank_main(
    rank: int, world: int, strategy: str, init_file: str, out: str, task: Callable[..., Any], args: tuple
) -> None:
    torch.set_num_threads(1)
    init = f"file://{init_file}"
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=init, rank=rank, world_size=world, timeout=timedelta(seconds=120))
    try:
        result = task(DataParallel(rank=rank, world=world, strategy=strategy), *args)  # type: ignore[arg-type]
        if rank == 0:
            torch.save(result, out)
    finally:
        dist.destroy_process_group()


def run_ranks(world: int, strategy: str, task: Callable[..., Any], *args: Any) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        init_file, out = str(Path(folder) / "init"), str(Path(folder) / "out.pt")
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        mp.spawn(_rank_main, args=(world, strategy, init_file, out, task, args), nprocs=world, join=True)
        return torch.load(out, weights_only=False)
