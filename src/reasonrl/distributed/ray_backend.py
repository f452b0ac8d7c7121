"""The Ray backend: engine replicas and reward workers as actors; the learner in this (driver) process, or
`distributed.learner.replicas` data-parallel ranks as actors."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group

from reasonrl.config.schema import DistributedConfig
from reasonrl.distributed.backend import EngineSite, LearnerSite, local_learner
from reasonrl.distributed.cluster import connect, preflight, role_bundle, wait_for
from reasonrl.distributed.learner_group import LearnerGroup
from reasonrl.distributed.replicas import EngineReplicas, EngineSpec
from reasonrl.distributed.rewards import ActorRewardPool
from reasonrl.engines.base import Engine
from reasonrl.engines.vllm import vllm_available
from reasonrl.rewards.pool import RewardPool, TermLike
from reasonrl.training.learner import Learner


class RayBackend:
    """Connects (or starts Ray) and checks the placement against the cluster before creating any actor."""

    def __init__(self, config: DistributedConfig, *, engine_groups: int = 1, reward_groups: int = 1) -> None:
        """`engine_groups` / `reward_groups`: how many engines and reward pools the run will ask for
        (`backend.role_groups`), each of `distributed.engine.replicas` / `reward.replicas` actors."""
        self.config = config
        self._owns_ray = not ray.is_initialized()
        connect(config)
        preflight(config, engine_groups=engine_groups, reward_groups=reward_groups)
        self._groups: list[PlacementGroup] = []
        self._engines: list[EngineReplicas] = []
        self._pools: list[ActorRewardPool] = []
        self._learners: list[LearnerGroup] = []
        if not config.colocate and config.learner.replicas == 1:
            self._reserve_learner()

    def learner(self, site: LearnerSite) -> Learner:
        """One rank: the learner in this process. Several: that many rank actors, one placement-group bundle each
        (packed onto as few nodes as fit), in one process group."""
        if self.config.learner.replicas == 1:
            return local_learner(site)
        bundle = role_bundle(self.config.learner)
        group = None
        if bundle:
            group = placement_group([bundle] * self.config.learner.replicas, strategy="PACK")
            timeout = self.config.start_timeout_seconds
            wait_for(group.ready(), role="learner", method="placement_group.ready", timeout=timeout)
            self._groups.append(group)
        learners = LearnerGroup(site, self.config, group)
        self._learners.append(learners)
        return learners  # type: ignore[return-value]  # the Learner interface the pipelines use

    def engine(self, site: EngineSite) -> Engine:
        """`distributed.engine.replicas` engines in one placement group (`placement_strategy`), started from the
        learner's current weights. `site.placement` and `site.work_dir` do not apply: each actor is its own
        place and receives the weights through the object store."""
        requested, learner, dtype = site.requested, site.learner, site.dtype
        kind = requested if requested != "auto" else ("vllm" if self.config.engine.gpus and vllm_available() else "hf")
        group = self._placement_group()
        spec = EngineSpec(
            kind=kind,
            model_config=learner.base.config,
            tokenizer=learner.tokenizer,
            seed=site.seed,
            dtype=str(learner.base.dtype).removeprefix("torch.") if dtype == "auto" else dtype,
            max_model_len=site.max_model_len,
            options=dict(site.options),
            sys_path=list(sys.path),
        )
        engines = EngineReplicas(spec, learner.weights(), self.config, group, version=site.version)
        self._engines.append(engines)
        return engines  # type: ignore[return-value]  # EngineReplicas is a StreamingEngine

    def _placement_group(self) -> PlacementGroup | None:
        """One bundle per engine replica, placed together or apart (`placement_strategy`); none when a replica
        reserves nothing (Ray rejects empty bundles)."""
        bundle = role_bundle(self.config.engine)
        if not bundle:
            return None
        group = placement_group([dict(bundle)] * self.config.engine.replicas, strategy=self.config.placement_strategy)
        timeout = self.config.start_timeout_seconds
        wait_for(group.ready(), role="engine", method="placement_group.ready", timeout=timeout)
        self._groups.append(group)
        return group

    def _reserve_learner(self) -> None:
        """Hold the learner's CPUs/GPUs on the driver's node (`colocate: false`), so that no actor is placed
        on them: the learner is this process, not an actor, and Ray would otherwise count them as free."""
        bundle = role_bundle(self.config.learner)
        if not bundle:
            return
        here = ray.get_runtime_context().get_node_id()
        group = placement_group([bundle], strategy="STRICT_PACK", _soft_target_node_id=here)
        timeout = self.config.start_timeout_seconds
        wait_for(group.ready(), role="learner", method="placement_group.ready", timeout=timeout)
        self._groups.append(group)

    def reward_pool(self, terms: Sequence[TermLike] | None, workers: int, timeout_seconds: float) -> RewardPool:
        pool = ActorRewardPool(terms, workers=workers, timeout_seconds=timeout_seconds, config=self.config)
        self._pools.append(pool)
        return pool  # type: ignore[return-value]  # the same submit/score/close interface

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for learners in self._learners:
            out |= learners.metrics()
        for engines in self._engines:
            out |= engines.metrics()
        for index, pool in enumerate(self._pools):
            named = {
                k.replace("distributed/reward", f"distributed/pool{index}/reward"): v for k, v in pool.metrics().items()
            }
            out |= named
        return out

    def close(self) -> None:
        for learners in self._learners:
            learners.close()
        for pool in self._pools:
            pool.close()
        for engines in self._engines:
            engines.close()
        for group in self._groups:
            remove_placement_group(group)
        self._pools, self._engines, self._groups, self._learners = [], [], [], []
        if self._owns_ray:
            ray.shutdown()
