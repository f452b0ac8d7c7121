"""One Ray instance for every Ray test of the session: starting Ray costs 3-5 s and its shutdown 1-2 s
(`../shared/reference/ray.md` §2.1), so tests share it and request fractions of its two logical CPUs."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest
import ray

RAY_SETS = ["distributed.backend=ray", "distributed.engine.cpus=0.5", "distributed.reward.cpus=0.25"]
"""Config overrides of a Ray run in these tests: fractions that leave room for every role at once."""


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[None]:
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="reasonrl")
    yield
    ray.shutdown()


def processes_titled(title: str) -> list[int]:
    """Pids of processes whose command line starts with `title` (Ray names a worker `ray::Class.method`)."""
    found = subprocess.run(["pgrep", "-f", f"^{title}"], capture_output=True, text=True, check=False).stdout
    return [int(pid) for pid in found.split()]


def kill(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    os.kill(pid, sig)
