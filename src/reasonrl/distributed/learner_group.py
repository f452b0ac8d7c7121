"""Data-parallel learner ranks as Ray actors: N `Learner`s in one torch.distributed process group (gloo on CPUs,
nccl on GPUs), driven from the driver as one learner.

Every rank receives the whole batch and runs the same `Learner` code with its `DataParallel` view
(`training.parallel`): the arithmetic is the one-rank learner's, split by rows. The driver keeps the controller's
role (as in ROLL and verl's single controller): it calls every rank with the same arguments and reads rank 0's
answer. Rank 0 publishes the weights to the object store itself, bucket by bucket, so they never pass through
the driver, and writes the Hugging Face export; every rank writes its own part of a sharded checkpoint.

A rank that dies takes the process group with it (a collective cannot finish without it): the group is torn
down and the run stops with `LearnerLost`, continued by `--resume` from the last checkpoint, which is exactly
what an uninterrupted run would have computed from there.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import ray
import torch
from ray.util.placement_group import PlacementGroup
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from reasonrl.config.schema import DistributedConfig, ModelConfig
from reasonrl.distributed.backend import LearnerSite
from reasonrl.distributed.cluster import ACTOR_GONE, import_like_the_driver, logs_dir, wait_for
from reasonrl.distributed.errors import LearnerLost
from reasonrl.distributed.weights import ObjectStoreWeights, Published
from reasonrl.tracking import Stopwatch
from reasonrl.training.batch import Batch
from reasonrl.training.models import load_tokenizer, pick_device

ROLE = "learner"
SETTLE_SECONDS = 10.0  # after a failed call, how long the other ranks' calls may take to fail too


class LearnerRank:
    """One rank (a plain class; `LearnerGroup` wraps it with `ray.remote`)."""

    def __init__(self, rank: int, world: int, strategy: str, threads: int, sys_path: list[str]) -> None:
        import_like_the_driver(sys_path)
        torch.set_num_threads(threads)
        from reasonrl.training.parallel import DataParallel

        self.parallel = DataParallel(rank=rank, world=world, strategy=strategy)  # type: ignore[arg-type]
        self.learner: Any = None

    def rendezvous(self) -> tuple[str, int]:
        """Rank 0's address for the process group: this node's IP and a free port."""
        with socket.socket() as probe:
            probe.bind(("", 0))
            port = probe.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def start(self, address: str, port: int, site: LearnerSite, timeout: float) -> int:
        """Join the process group and build this rank's learner (FSDP2 shards the model here, collectively)."""
        import torch.distributed as dist

        from reasonrl.training.learner import Learner

        device = pick_device(site.device)
        if device.type == "cuda":
            torch.cuda.set_device(0)  # Ray shows each rank its own GPU as device 0
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            init_method=f"tcp://{address}:{port}",
            rank=self.parallel.rank,
            world_size=self.parallel.world,
            timeout=timedelta(seconds=timeout),
        )
        self.learner = Learner(
            site.folder,
            site.model,
            site.train,
            site.algorithm,
            device,
            max_new_tokens=site.max_new_tokens,
            reference_folder=site.reference_folder,
            critic_folder=site.critic_folder,
            parallel=self.parallel,
        )
        # A LoRA adapter to resume (`site.adapter_folder`) comes back with the rest of the sharded state, in
        # `restore`: peft's loader cannot write whole tensors into FSDP2's shards.
        return os.getpid()

    def prepare(self, *args: Any, **kwargs: Any) -> tuple[Batch, dict[str, float]]:
        timer = Stopwatch()
        batch, metrics = self.learner.prepare(*args, timer=timer, **kwargs)
        laps = {name: seconds for name, seconds in timer.lap().items() if name != "time/step"}
        return batch, {**metrics, **laps}

    def update(self, batch: Batch, group_size: int) -> tuple[dict[str, float], int]:
        return self.learner.update(batch, group_size), self.learner.nonfinite_in_a_row

    def publish(self, bucket_bytes: int) -> tuple[Any, dict[str, float]]:
        """Rank 0: the weights put in the object store bucket by bucket (under FSDP2 each tensor is gathered in
        its turn, every rank taking part), and what the push held: the largest bucket of gathered tensors (zero
        for replicated weights, which are packed as views) and the whole model's bytes. Other ranks: None."""
        if not self.parallel.leader:
            if self.parallel.sharded:  # take part in the gathers; replicas have nothing to do
                for _ in self.learner.engine_weights():
                    pass
            return None, {}
        named = self.learner.engine_weights()
        transport = ObjectStoreWeights(bucket_bytes)
        payload = transport.publish(named, 0)
        held = transport.peak_bucket_bytes if self.parallel.sharded else 0
        return payload, {"push_peak_bytes": float(held), "model_bytes": float(transport.published_bytes)}

    def save(self, folder: str, optimizer: bool) -> dict[str, Any]:
        return self.learner.save(Path(folder), optimizer=optimizer)

    def restore(self, folder: str, state: dict[str, Any]) -> None:
        self.learner.restore(Path(folder), state)


class LearnerGroup:
    """`distributed.learner.replicas` ranks behind the `Learner` interface the pipelines use: `prepare`,
    `update`, `engine_weights`, `save`, `restore`, and the attributes an engine is built from."""

    def __init__(self, site: LearnerSite, config: DistributedConfig, placement_group: PlacementGroup | None) -> None:
        self.config = config
        self.tokenizer = load_tokenizer(site.folder)
        self.model = skeleton(site.folder, site.model)  # the architecture and dtype, on the meta device
        self.lora = False  # the skeleton is the plain architecture: the ranks export LoRA merged
        self.reference = None  # lives in the ranks
        self.device = torch.device("cpu")
        self.nonfinite_in_a_row = 0
        self.bucket_bytes = config.learner.bucket_mb * 2**20
        self._metrics: dict[str, float] = {}
        self._published: Published | None = None  # this version's weights, once put
        learner = config.learner
        world = learner.replicas
        actor = ray.remote(LearnerRank)
        self.ranks = [
            actor.options(
                num_cpus=learner.cpus,
                num_gpus=learner.gpus,
                max_restarts=0,  # a rank's state is gone with it: the run stops and resumes from a checkpoint
                max_concurrency=1,
                scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group, placement_group_bundle_index=rank)
                if placement_group is not None
                else "DEFAULT",
            ).remote(rank, world, learner.strategy, max(1, int(learner.cpus)), list(sys.path))
            for rank in range(world)
        ]
        timeout = config.start_timeout_seconds
        address, port = wait_for(self.ranks[0].rendezvous.remote(), role=ROLE, method="rendezvous", timeout=timeout)
        pids = self._all("start", address, port, site, timeout, deadline=timeout)
        self._metrics |= {f"distributed/learner{rank}/pid": float(pid) for rank, pid in enumerate(pids)}
        self.pids = list(pids)

    # ---- the Learner interface ------------------------------------------------------------------------------
    def prepare(
        self,
        prompt_ids: Sequence[list[int]],
        response_ids: Sequence[list[int]],
        behaviour_logprobs: Sequence[Sequence[float]],
        rewards: Sequence[float],
        group_size: int,
        timer: Any = None,
        **options: Any,
    ) -> tuple[Batch, dict[str, float]]:
        """`Learner.prepare` on every rank (each scores its own rows and gets the whole); rank 0's batch, and its
        phase times as `time/<phase>` metrics (the phases run in the ranks, which time them, not `timer`)."""
        del timer
        args = (prompt_ids, response_ids, behaviour_logprobs, rewards, group_size)
        return self._all("prepare", *args, **options)[0]

    def update(self, batch: Batch, group_size: int) -> dict[str, float]:
        metrics, self.nonfinite_in_a_row = self._all("update", batch, group_size)[0]
        self._published = None
        return metrics

    def engine_weights(self) -> Published:
        """The current weights, put in the object store by rank 0 in buckets (`distributed.learner.bucket_mb`):
        an engine publishing them passes the objects on, and nothing passes through this process. Published
        once per update, however many engines ask (the async pipeline's producer and held-out engine)."""
        if self._published is not None:
            return self._published
        started = time.perf_counter()
        payload, held = self._all("publish", self.bucket_bytes)[0]
        self._metrics["distributed/learner_push_seconds"] = time.perf_counter() - started
        self._metrics["distributed/learner_push_peak_bytes"] = held["push_peak_bytes"]
        self._metrics["distributed/learner_model_bytes"] = held["model_bytes"]
        self._published = Published(payload)
        return self._published

    def save(self, folder: Path, *, optimizer: bool = True) -> dict[str, Any]:
        """Every rank writes its part into `folder` (on a file system they all see); rank 0's small state."""
        return self._all("save", str(folder), optimizer)[0]

    def restore(self, folder: Path, state: dict[str, Any]) -> None:
        self._all("restore", str(folder), state)

    def metrics(self) -> dict[str, float]:
        return dict(self._metrics)

    def close(self) -> None:
        for rank in self.ranks:
            ray.kill(rank, no_restart=True)
        self.ranks = []

    # ---- calls ---------------------------------------------------------------------------------------------
    def _all(self, method: str, *args: Any, deadline: float | None = None, **kwargs: Any) -> list[Any]:
        """`method` on every rank with the same arguments; their answers in rank order. A rank that dies, hangs
        past `deadline` or raises ends the group: every rank is killed (the others would wait in a collective
        for it) and a dead or hung rank raises `LearnerLost`; another error is raised as it is."""
        if not self.ranks:
            raise LearnerLost("the learner ranks were shut down after an earlier failure; run again with --resume")
        refs = [getattr(rank, method).remote(*args, **kwargs) for rank in self.ranks]
        started = time.monotonic()
        try:
            remaining = list(refs)
            while remaining:  # one at a time: the first failure ends the wait, not a collective's timeout
                left = None if deadline is None else max(0.0, deadline - (time.monotonic() - started))
                ready, remaining = ray.wait(remaining, num_returns=1, timeout=left)
                if not ready:
                    raise LearnerLost(
                        f"learner ranks {[refs.index(r) for r in remaining]} did not finish {method} within "
                        f"{deadline:g} s; look in {logs_dir()} for their worker-*.err"
                    )
                ray.get(ready[0])
            return [ray.get(ref) for ref in refs]
        except BaseException as error:
            # A dead rank's call may fail after its peers' (their collective broke first): let every call settle
            # before telling a lost rank from an error in the work itself.
            ray.wait(refs, num_returns=len(refs), timeout=SETTLE_SECONDS)
            lost = self._lost(refs)
            self.close()
            if lost and not isinstance(error, LearnerLost):
                raise LearnerLost(
                    f"learner rank {lost[0]} died during {method} ({_first_line(error)}); the other ranks were "
                    f"stopped with it. Look in {logs_dir()} for its worker-*.err"
                ) from error
            raise

    def _lost(self, refs: Sequence[Any]) -> list[int]:
        """The ranks whose call failed because their actor is gone."""
        lost = []
        for rank, ref in enumerate(refs):
            try:
                ray.get(ref, timeout=0)
            except ACTOR_GONE:
                lost.append(rank)
            except Exception:  # a task error or one still running: not a lost actor
                continue
        return lost


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def skeleton(folder: Path, config: ModelConfig) -> Any:
    """The policy's architecture with no weights (meta device): its config and dtype are what the driver needs
    to build engines; the weights live in the ranks."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from reasonrl.training.models import DTYPES

    model_config = AutoConfig.from_pretrained(folder, trust_remote_code=config.trust_remote_code)
    dtype = DTYPES[config.dtype]
    if dtype == "auto":
        dtype = getattr(model_config, "torch_dtype", None) or torch.float32
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(model_config, dtype=dtype, trust_remote_code=config.trust_remote_code)
