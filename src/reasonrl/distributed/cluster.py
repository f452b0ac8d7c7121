"""Joining or starting Ray, checking a placement against the cluster before creating anything, and the
bounded waits every remote call goes through.

Ray's own answer to a placement it cannot satisfy is to wait forever with a line in `monitor.log` (measured:
`../shared/reference/ray.md` §2.6); users of verl and OpenRLHF report it as their most common problem. So the
placement is compared with the cluster's resources first, and every blocking call has a deadline whose error
names the role, the method and Ray's log folder.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from reasonrl.config.schema import DistributedConfig, LearnerResources, RoleResources
from reasonrl.distributed.errors import DistributedError, PlacementError, RestartsExhausted

T = TypeVar("T")

# ActorUnavailableError (a restarting actor) subclasses RayActorError in Ray 2.60; both mean "not now".
ACTOR_GONE = (RayActorError,)

RELEASE_GRACE_SECONDS = 10.0  # how long a placement that is short waits for resources being released


def connect(config: DistributedConfig) -> None:
    """Join `config.address`, or start a local Ray instance sized to this machine; nothing if this process
    is already connected (tests share one instance)."""
    if ray.is_initialized():
        return
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "namespace": "reasonrl"}
    if config.address is None:
        options["num_cpus"] = os.cpu_count() or 1
    else:
        options["address"] = config.address
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError) as error:
        where = "a local Ray instance" if config.address is None else f"the Ray cluster at {config.address!r}"
        raise DistributedError(
            f"could not start or join {where}: {error}. Check `ray status` (for an address, that `ray start "
            f"--head` runs there), or set distributed.address: null for a local instance"
        ) from error


def logs_dir() -> str:
    """Where this Ray session writes its logs (monitor.log names pending resource demands)."""
    try:
        return str(ray._private.worker._global_node.get_logs_dir_path())  # no public accessor
    except AttributeError:
        return "/tmp/ray/session_latest/logs"


def role_bundle(role: RoleResources | LearnerResources) -> dict[str, float]:
    """One replica's (or learner rank's) Ray resource request; zero entries left out (Ray rejects them in
    bundles)."""
    bundle = {"CPU": role.cpus, "GPU": role.gpus, **getattr(role, "resources", {})}
    return {name: amount for name, amount in bundle.items() if amount > 0}


def _fmt(resources: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(resources.items())) + "}"


def preflight(config: DistributedConfig, *, engine_groups: int = 1, reward_groups: int = 1) -> None:
    """Fail now, naming the role and the shortfall, if the cluster cannot hold the placement: the roles'
    summed requests (`engine_groups` engines and `reward_groups` reward pools, each of its role's replicas)
    against what is available, and each replica against the largest node."""
    available = {k: float(v) for k, v in ray.available_resources().items()}
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    roles: list[tuple[str, dict[str, float], int]] = [
        ("engine", role_bundle(config.engine), config.engine.replicas * engine_groups),
        ("reward", role_bundle(config.reward), config.reward.replicas * reward_groups),
    ]
    in_driver = config.learner.replicas == 1
    if not config.colocate or not in_driver:  # learner ranks are actors: each holds its own bundle
        roles.append(("learner", role_bundle(config.learner), config.learner.replicas))
    hint = (
        "Lower distributed.<role>.replicas, cpus or gpus, set distributed.colocate: true, or add nodes "
        "(`ray start --address=<head>:6379` on another machine)"
    )
    for role, bundle, _ in roles:
        for name, amount in bundle.items():
            largest = max((float(n.get(name, 0.0)) for n in nodes), default=0.0)
            if amount > largest:
                raise PlacementError(
                    f"distributed.{role}: one replica needs {_fmt(bundle)}, but no node has {name} {amount:g} "
                    f"(the largest has {largest:g}). {hint}"
                )
    if not config.colocate and in_driver:  # the learner is this process: it needs its resources on this node
        here = ray.get_runtime_context().get_node_id()
        own = next((n.get("Resources", {}) for n in ray.nodes() if n.get("NodeID") == here), {})
        for name, amount in roles[-1][1].items():
            if amount > float(own.get(name, 0.0)):
                raise PlacementError(
                    f"distributed.learner needs {name} {amount:g} on the driver's node (the learner runs in "
                    f"this process), which has {float(own.get(name, 0.0)):g}. Run the driver on a node that "
                    f"has them, or set distributed.colocate: true. {hint}"
                )
    needed: dict[str, float] = {}
    for _, bundle, replicas in roles:
        for name, amount in bundle.items():
            needed[name] = needed.get(name, 0.0) + amount * replicas
    # Ray returns a killed actor's resources a second or two after the kill (a previous run's, in one session):
    # a placement the cluster could hold when idle waits a little for them.
    total = {k: float(v) for k, v in ray.cluster_resources().items()}
    fits_idle = all(amount <= total.get(name, 0.0) + 1e-9 for name, amount in needed.items())
    deadline = time.monotonic() + (min(RELEASE_GRACE_SECONDS, config.start_timeout_seconds) if fits_idle else 0.0)
    while True:
        short = {name: amount - available.get(name, 0.0) for name, amount in needed.items()}
        short = {name: gap for name, gap in short.items() if gap > 1e-9}
        if not short or time.monotonic() > deadline:
            break
        time.sleep(0.25)
        available = {k: float(v) for k, v in ray.available_resources().items()}
    if short:
        parts = [f"{role} {replicas} x {_fmt(bundle)}" for role, bundle, replicas in roles if bundle]
        culprit = max(roles, key=lambda r: sum(r[1].get(name, 0.0) * r[2] for name in short))[0]
        raise PlacementError(
            f"distributed: the placement needs {_fmt(needed)} ({'; '.join(parts)}) but the cluster has "
            f"{_fmt({k: available.get(k, 0.0) for k in needed})} available: short of {_fmt(short)}, mostly for "
            f"the {culprit} role. {hint}"
        )


def wait_for(ref: Any, *, role: str, method: str, timeout: float) -> Any:
    """`ray.get(ref)` with a deadline whose error says who did not answer and where to look."""
    try:
        return ray.get(ref, timeout=timeout)
    except GetTimeoutError as error:
        raise DistributedError(
            f"the {role} role did not answer {method} within {timeout:g} s; look in {logs_dir()} "
            "(monitor.log lists resource demands Ray cannot place; worker-*.err holds actors' tracebacks)"
        ) from error


def shard_bounds(count: int, replicas: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) ranges over `count` requests, as even as possible, empty ones dropped."""
    base, extra = divmod(count, replicas)
    bounds, start = [], 0
    for i in range(replicas):
        end = start + base + (1 if i < extra else 0)
        if end > start:
            bounds.append((start, end))
        start = end
    return bounds


def gather_shards(
    count: int,
    replicas: int,
    submit: Callable[[int, int, int], Any],
    recover: Callable[[int, BaseException, bool], None],
    *,
    role: str,
    method: str,
    timeout: Callable[[int, int], float],
) -> list[Any]:
    """The results of `submit(replica, start, end)` over contiguous shards of `count` items, concatenated in
    order. A replica that dies or passes `timeout(start, end)` is recovered (`recover(replica, error, hung)`)
    and asked again: for calls whose answer does not depend on the attempt (scoring)."""
    bounds = shard_bounds(count, replicas)
    refs = [submit(i, a, b) for i, (a, b) in enumerate(bounds)]
    out: list[Any] = []
    for i, ((a, b), ref) in enumerate(zip(bounds, refs, strict=True)):
        while True:
            try:
                out.extend(wait_for(ref, role=role, method=method, timeout=timeout(a, b)))
                break
            except (DistributedError, *ACTOR_GONE) as error:
                recover(i, error, not isinstance(error, ACTOR_GONE))
                ref = submit(i, a, b)
    return out


def import_like_the_driver(sys_path: list[str]) -> None:
    """Put the driver's import path in front of this actor's, so `module:name` plug-ins load here as they did
    there (on the driver's machine; other nodes need the package installed)."""
    for entry in reversed(sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def wait_until_up(ping: Callable[[], Any], *, role: str, timeout: float) -> Any:
    """Ping a (re)starting actor until it answers: calls made while Ray restarts an actor fail at once
    rather than queue (ray.md §2.5), so this retries until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            return wait_for(ping(), role=role, method="ping", timeout=max(left, 0.1))
        except ACTOR_GONE as error:
            if left <= 0:
                raise DistributedError(
                    f"the {role} role did not come back within {timeout:g} s after a restart ({error}); look "
                    f"in {logs_dir()} for its worker-*.err"
                ) from error
            time.sleep(0.2)


@dataclass
class RestartBudget:
    """At most `limit` restarts of a role within `window` seconds; one more ends the run."""

    role: str
    limit: int
    window: float
    times: deque[float] = field(default_factory=deque)
    total: int = 0

    def record(self, replica: int, cause: str) -> None:
        now = time.monotonic()
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        if len(self.times) >= self.limit:
            raise RestartsExhausted(
                f"{self.role} replica {replica} failed ({cause}) after {len(self.times)} restarts within "
                f"{self.window:g} s (distributed.max_restarts: {self.limit}); the run stops here. Look in "
                f"{logs_dir()} (worker-*.err) for why it died; raise distributed.max_restarts or "
                "call_timeout_seconds if it was only slow"
            )
        self.times.append(now)
        self.total += 1
