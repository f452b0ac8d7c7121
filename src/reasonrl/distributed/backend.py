"""The executor seam between the pipelines and where their parts run.

A pipeline asks its `Backend` for the learner, the rollout engine and the reward pools; the local backend
builds today's (`Learner`, `build_placed_engine`, `RewardPool`), the Ray backend builds engine replicas and
reward workers as actors behind the same interfaces, and, with `distributed.learner.replicas` > 1,
data-parallel learner ranks as actors behind the learner's (`learner_group.LearnerGroup`). The driver stays the
controller either way (as in ROLL: tracebacks, progress and checkpoints live in one process).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from reasonrl.config.schema import AlgorithmConfig, DistributedConfig, ModelConfig, RunConfig, TrainConfig
from reasonrl.engines.base import Engine
from reasonrl.engines.factory import LearnerWeights, build_placed_engine
from reasonrl.rewards.pool import RewardPool, TermLike
from reasonrl.training.learner import Learner
from reasonrl.training.models import pick_device


@dataclass(frozen=True)
class LearnerSite:
    """What a backend builds the learner from: `Learner`'s arguments, plus a LoRA adapter to load on resume."""

    folder: Path
    model: ModelConfig
    train: TrainConfig
    algorithm: AlgorithmConfig
    device: str  # backend.device: auto | cpu | cuda
    max_new_tokens: int
    reference_folder: Path | None = None
    critic_folder: Path | None = None
    adapter_folder: Path | None = None


@dataclass(frozen=True)
class EngineSite:
    """What a backend builds a rollout engine from: `build_placed_engine`'s arguments, plus the policy
    version the learner's current weights are (`version`)."""

    requested: str  # rollout.engine
    placement: str  # rollout.placement
    learner: LearnerWeights
    pipeline: str
    work_dir: Path
    seed: int
    dtype: str
    max_model_len: int
    options: Mapping[str, Any] = field(default_factory=dict)
    version: int = 0


def local_learner(site: LearnerSite) -> Learner:
    """The learner in this process, as every backend builds it for one rank."""
    learner = Learner(
        site.folder,
        site.model,
        site.train,
        site.algorithm,
        pick_device(site.device),
        max_new_tokens=site.max_new_tokens,
        reference_folder=site.reference_folder,
        critic_folder=site.critic_folder,
    )
    if site.adapter_folder is not None:
        learner.load_adapter(site.adapter_folder)
    return learner


class Backend(Protocol):
    def learner(self, site: LearnerSite) -> Learner:
        """The learner `site` describes: in this process, or data-parallel ranks behind the same interface."""
        ...

    def engine(self, site: EngineSite) -> Engine:
        """The rollout engine `site` describes."""
        ...

    def reward_pool(self, terms: Sequence[TermLike] | None, workers: int, timeout_seconds: float) -> RewardPool:
        """A reward pool (`RewardPool`'s arguments)."""
        ...

    def metrics(self) -> dict[str, float]:
        """Per-role pids, versions, restarts, throughput and transfer seconds since the last call."""
        ...

    def close(self) -> None: ...


class LocalBackend:
    """Everything in this process: today's behaviour, the default and the debugging path (pdb works)."""

    def learner(self, site: LearnerSite) -> Learner:
        return local_learner(site)

    def engine(self, site: EngineSite) -> Engine:
        engine = build_placed_engine(
            site.requested,
            site.placement,
            site.learner,
            pipeline=site.pipeline,
            work_dir=site.work_dir,
            seed=site.seed,
            dtype=site.dtype,
            max_model_len=site.max_model_len,
            options=site.options,
        )
        engine.version = site.version
        return engine

    def reward_pool(self, terms: Sequence[TermLike] | None, workers: int, timeout_seconds: float) -> RewardPool:
        return RewardPool(terms, workers=workers, timeout_seconds=timeout_seconds)

    def metrics(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        """Nothing to release: the run closes its engine and pools itself."""


def backend_for(config: RunConfig) -> Backend:
    """The backend `distributed.backend` names; Ray is imported only here, and only for `ray`."""
    if config.distributed.backend == "local":
        return LocalBackend()
    return ray_backend(config.distributed, *role_groups(config))


def role_groups(config: RunConfig) -> tuple[int, int]:
    """How many engine-replica groups and reward-actor groups the run builds, for the placement check: one
    engine (the rollouts'), plus the async pipeline's held-out engine when learner ranks hold the weights (it
    cannot share a module in the driver); the training pool, the verifier's own when the training reward
    differs from it, and the async producer's pool."""
    is_async = config.pipeline == "async"
    reward = config.algorithm.reward
    engines = 1 + int(is_async and config.distributed.learner.replicas > 1)
    pools = 1 + int(bool(reward.functions) or reward.labels != "answer") + int(is_async)
    return engines, pools


def ray_backend(config: DistributedConfig, engine_groups: int = 1, reward_groups: int = 1) -> Backend:
    try:
        from reasonrl.distributed.ray_backend import RayBackend
    except ImportError as error:
        raise ValueError(
            f"distributed.backend: ray needs the `ray` package ({error}); `pip install -e .[ray]` (or "
            "`pip install 'ray>=2.40'`), or set distributed.backend: local"
        ) from error
    return RayBackend(config, engine_groups=engine_groups, reward_groups=reward_groups)
