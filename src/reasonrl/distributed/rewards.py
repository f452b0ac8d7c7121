"""Reward workers as Ray actors: each actor runs a `RewardPool` of its own, so the pool's guarantees (a
per-sample wall-clock limit, a crashed or hung scoring process replaced, its sample scored 0 with the reason)
hold inside every actor unchanged; this layer shards batches over the actors and survives an actor's death.

Scoring is a pure function of (prompt, response), so a shard lost with an actor is simply scored again on
the restarted one.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import ray

from reasonrl.config.schema import DistributedConfig
from reasonrl.distributed.cluster import RestartBudget, gather_shards, import_like_the_driver, wait_until_up
from reasonrl.rewards.pool import RewardPool, TermLike
from reasonrl.rewards.single_response import RewardResult

ROLE = "reward"


class RewardWorker:
    """A `RewardPool` in an actor (a plain class; `ActorRewardPool` wraps it with `ray.remote`)."""

    def __init__(
        self, terms: list[Any] | None, workers: int, timeout_seconds: float, threads: int, sys_path: list[str]
    ) -> None:
        import_like_the_driver(sys_path)
        import torch

        torch.set_num_threads(threads)  # for rewards scored in this process (algorithm.reward.workers: 0)
        self.pool = RewardPool(terms, workers=workers, timeout_seconds=timeout_seconds)

    def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "workers": self.pool.worker_pids}

    def score(self, prompts: Sequence[Any], responses: Sequence[str]) -> list[RewardResult]:
        return self.pool.score(prompts, responses)


class ActorRewardPool:
    """`RewardPool`'s interface (`submit`, `score`, `close`) over `config.reward.replicas` actors."""

    def __init__(
        self,
        terms: Sequence[TermLike] | None,
        *,
        workers: int,
        timeout_seconds: float,
        config: DistributedConfig,
    ) -> None:
        self.config = config
        self.timeout_seconds = timeout_seconds
        self._workers = workers
        self._budget = RestartBudget(ROLE, config.max_restarts, config.restart_window_seconds)
        plain = [SimpleNamespace(name=t.name, weight=float(t.weight), options=dict(t.options)) for t in terms or ()]
        actor = ray.remote(RewardWorker).options(
            num_cpus=config.reward.cpus,
            num_gpus=config.reward.gpus,
            resources=dict(config.reward.resources),
            max_restarts=-1,
            max_task_retries=0,
        )
        threads = config.reward.threads or max(1, int(config.reward.cpus))
        self.handles = [
            actor.remote(plain or None, workers, timeout_seconds, threads, list(sys.path))
            for _ in range(config.reward.replicas)
        ]
        self.pids = [0] * len(self.handles)
        self.restarts = [0] * len(self.handles)
        for index, handle in enumerate(self.handles):
            self.pids[index] = int(
                wait_until_up(handle.ping.remote, role=ROLE, timeout=config.start_timeout_seconds)["pid"]
            )
        # One dispatcher: batches are scored in submission order, as RewardPool promises.
        self._dispatcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasonrl-reward-actors")
        self._closed = False

    def submit(self, prompts: Sequence[Any], responses: Sequence[str]) -> Future[list[RewardResult]]:
        if len(prompts) != len(responses):
            raise ValueError(f"RewardPool.score: {len(prompts)} prompts but {len(responses)} responses; pass one each")
        if self._closed:
            raise RuntimeError("the reward pool is closed; build a new one")
        return self._dispatcher.submit(self._score, list(prompts), list(responses))

    def score(self, prompts: Sequence[Any], responses: Sequence[str]) -> list[RewardResult]:
        return self.submit(prompts, responses).result()

    def _deadline(self, size: int) -> float:
        """A shard's longest wait: every sample at its limit (plus the pool's grace), workers in parallel."""
        rounds = math.ceil(size / max(self._workers, 1))
        return self.config.call_timeout_seconds + rounds * (self.timeout_seconds + 1.0)

    def _score(self, prompts: list[Any], responses: list[str]) -> list[RewardResult]:
        return gather_shards(
            len(prompts),
            len(self.handles),
            lambda i, a, b: self.handles[i].score.remote(prompts[a:b], responses[a:b]),
            self._recover,
            role=ROLE,
            method="score",
            timeout=lambda a, b: self._deadline(b - a),
        )

    def _recover(self, index: int, error: BaseException, hung: bool) -> None:
        if hung:
            ray.kill(self.handles[index], no_restart=False)
        self._budget.record(index, f"{'silent' if hung else 'died'}: {type(error).__name__}")
        self.restarts[index] += 1
        answer = wait_until_up(self.handles[index].ping.remote, role=ROLE, timeout=self.config.start_timeout_seconds)
        self.pids[index] = int(answer["pid"])

    @property
    def worker_pids(self) -> list[int]:
        return list(self.pids)

    def metrics(self) -> dict[str, float]:
        out = {}
        for index, (pid, restarts) in enumerate(zip(self.pids, self.restarts, strict=True)):
            out[f"distributed/reward{index}/pid"] = float(pid)
            out[f"distributed/reward{index}/restarts"] = float(restarts)
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._dispatcher.shutdown(wait=True)
        for handle in self.handles:
            ray.kill(handle, no_restart=True)

    def __enter__(self) -> ActorRewardPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
