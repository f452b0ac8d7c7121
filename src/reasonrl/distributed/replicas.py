"""N rollout engines as Ray actors behind the `StreamingEngine` interface the scheduler already drives.

`generate` cuts the requests into contiguous shards, one per replica, and streams every replica's finished
responses back to the caller's thread, where `on_finish` and `should_abort` run exactly as with a local
engine. Weights are published once per version (one `ray.put` of numpy arrays that every replica loads) and
the newest reference is kept: a replica that Ray restarts holds the weights it was created with, so it loads
the newest version before it serves again.

Losing no sample: a replica that dies (SIGKILL, OOM) or stays silent past the deadline (killed here, then
restarted by Ray) has its whole shard replayed once it is back, and responses it had already reported are
kept, not reported twice. A shard is replayed whole, in the same batch composition, because log-probs of a
row depend slightly on the batch it shares (`tests/engines/test_hf_engine.py`); with
`rollout.seed_per_request` the replayed responses are then the lost ones bit for bit. After an abort
(partial rollouts), a lost shard's unreported responses come back as empty `abort` generations: their
prefixes stay with the scheduler and continue in a later call.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError
from ray.util.placement_group import PlacementGroup
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from reasonrl.config.schema import DistributedConfig
from reasonrl.distributed.cluster import (
    ACTOR_GONE,
    RestartBudget,
    gather_shards,
    shard_bounds,
    wait_for,
    wait_until_up,
)
from reasonrl.distributed.engine_worker import EngineWorker
from reasonrl.distributed.errors import DistributedError
from reasonrl.distributed.weights import ObjectStoreWeights, WeightTransport
from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings, TokenScores, mix_seed
from reasonrl.engines.stops import response_text

ROLE = "engine"


class _Hung(Exception):
    """A replica sent nothing within the call's deadline."""


@dataclass
class Replica:
    index: int
    handle: Any
    pid: int = 0
    node: str = ""
    restarts: int = 0
    tokens: int = 0
    compute_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class EngineSpec:
    """How to build each replica (what `EngineWorker` takes), with the Ray options of its actor."""

    kind: str
    model_config: Any
    tokenizer: Any
    seed: int
    dtype: str
    max_model_len: int
    options: dict[str, Any]
    sys_path: list[str]


class EngineReplicas:
    """`config.engine.replicas` engine actors, placed in `placement_group` (bundle i for replica i)."""

    def __init__(
        self,
        spec: EngineSpec,
        named_tensors: Iterable[tuple[str, Any]],
        config: DistributedConfig,
        placement_group: PlacementGroup | None,
        version: int = 0,
        transport: WeightTransport | None = None,
    ) -> None:
        self.config = config
        self.tokenizer = spec.tokenizer
        self._budget = RestartBudget(ROLE, config.max_restarts, config.restart_window_seconds)
        started = time.perf_counter()
        self.transport = transport or ObjectStoreWeights()
        self._weights = self.transport.publish(named_tensors, version)
        # Ray re-runs the constructor with these same arguments on every restart: keep them alive for good.
        self._initial_weights = self._weights
        self._weights_version = version
        self._lock = threading.Lock()  # one generate at a time, as a local engine's caller guarantees
        self._loads: list[tuple[Replica, Any]] = []  # weight loads in flight (`update_weights`)
        self._loads_lock = threading.Lock()
        self._metrics = {"weight_push_seconds": time.perf_counter() - started, "transfer_seconds": 0.0}
        threads = config.engine.threads or max(1, int(config.engine.cpus))
        actor = ray.remote(EngineWorker)
        self.replicas: list[Replica] = []
        for index in range(config.engine.replicas):
            strategy = (
                PlacementGroupSchedulingStrategy(placement_group, placement_group_bundle_index=index)
                if placement_group is not None
                else "DEFAULT"
            )
            handle = actor.options(
                num_cpus=config.engine.cpus,
                num_gpus=config.engine.gpus,
                resources=dict(config.engine.resources),
                max_concurrency=2,
                max_restarts=-1,  # counted and bounded here (RestartBudget), where the error can be clear
                max_task_retries=0,  # a retry would generate on a fresh engine's initial weights
                scheduling_strategy=strategy,
            ).remote(
                spec.kind,
                spec.model_config,
                spec.tokenizer,
                self._weights,
                transport=self.transport,
                version=version,
                seed=spec.seed if index == 0 else mix_seed(spec.seed, index),
                dtype=spec.dtype,
                threads=threads,
                max_model_len=spec.max_model_len,
                options=spec.options,
                sys_path=spec.sys_path,
            )
            self.replicas.append(Replica(index, handle))
        for replica in self.replicas:
            self._note_up(replica, wait_until_up(replica.handle.ping.remote, role=ROLE, timeout=self._start))

    @property
    def version(self) -> int:
        """The policy version the replicas sample from (the newest published)."""
        return self._weights_version

    @version.setter
    def version(self, version: int) -> None:
        """What a resumed run says the weights it started the replicas from are (`pipelines.setup.restore`)."""
        self._weights_version = version

    @property
    def _start(self) -> float:
        return self.config.start_timeout_seconds

    def _deadline(self, sampling: SamplingSettings, requests: Sequence[GenerationRequest]) -> float:
        """Longest silence of a generate call: the base plus a share per token of the longest budget."""
        longest = max((r.max_new_tokens or sampling.max_new_tokens for r in requests), default=0)
        return self.config.call_timeout_seconds + self.config.seconds_per_token * longest

    def _note_up(self, replica: Replica, answer: dict[str, Any]) -> None:
        replica.pid, replica.node = int(answer["pid"]), str(answer["node"])

    # ---- weights ---------------------------------------------------------------------------------------------
    def update_weights(self, named_tensors: Iterable[tuple[str, Any]], version: int) -> None:
        """Publish version `version` once (`transport`; by default one put that every replica loads). The loads
        run while the driver goes on (logging, checkpoints, drawing the next prompts); the next call to the
        replicas waits for them first, so nothing is ever served from older weights."""
        self._settle_loads()
        started = time.perf_counter()
        self._weights = self.transport.publish(named_tensors, version)
        self._weights_version = version
        with self._loads_lock:
            self._loads = [(r, r.handle.load.remote(self._weights, version)) for r in self.replicas]
        self._metrics["weight_push_seconds"] += time.perf_counter() - started

    def _settle_loads(self) -> None:
        """Wait for the loads the last `update_weights` started; a replica that died meanwhile is restarted,
        which loads the newest weights itself."""
        with self._loads_lock:
            loads, self._loads = self._loads, []
        if not loads:
            return
        started = time.perf_counter()
        for replica, ref in loads:
            try:
                wait_for(ref, role=ROLE, method="load", timeout=self._start)
            except ACTOR_GONE as error:
                self._recover(replica, f"died while loading weights: {error}", hung=False)
        self._metrics["weight_push_seconds"] += time.perf_counter() - started

    # ---- generation ------------------------------------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingSettings,
        *,
        on_finish: Callable[[int, Generation], bool] | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> list[Generation]:
        if not requests:
            return []
        with self._lock:
            self._settle_loads()
            return _Call(self, list(requests), sampling, on_finish, should_abort).run()

    def text(self, tokens: Sequence[int], sampling: SamplingSettings) -> str:
        return response_text(self.tokenizer, tokens, sampling.stop)

    def score(self, requests: Sequence[GenerationRequest], distributions: bool = False) -> list[TokenScores]:
        """Teacher-forced scores, sharded like `generate`; a replica lost on the way is restarted and asked
        again (scoring has no randomness, so the retry returns the same numbers)."""
        self._settle_loads()
        requests = list(requests)
        return gather_shards(
            len(requests),
            len(self.replicas),
            lambda i, a, b: self.replicas[i].handle.score.remote(requests[a:b], distributions),
            lambda i, error, hung: self._recover(self.replicas[i], f"score failed: {error}", hung=hung),
            role=ROLE,
            method="score",
            timeout=lambda a, b: self.config.call_timeout_seconds,
        )

    # ---- recovery --------------------------------------------------------------------------------------------
    def _recover(self, replica: Replica, cause: str, *, hung: bool) -> None:
        """Bring `replica` back serving the newest weights: kill it if it hung (Ray restarts it), count the
        restart (too many end the run), wait until it answers, load the kept weights."""
        with replica.lock:
            if hung:
                ray.kill(replica.handle, no_restart=False)
            self._budget.record(replica.index, cause)
            replica.restarts += 1
            answer = wait_until_up(replica.handle.ping.remote, role=ROLE, timeout=self._start)
            self._note_up(replica, answer)
            if answer["version"] != self._weights_version:
                wait_for(
                    replica.handle.load.remote(self._weights, self._weights_version),
                    role=ROLE,
                    method="load",
                    timeout=self._start,
                )

    # ---- checkpointed state ----------------------------------------------------------------------------------
    def rng_state(self) -> dict[str, object]:
        """Each replica's sampling RNG; None for one that cannot answer (the checkpoint written as a run stops
        because a replica keeps dying must not need it: that replica then starts from its seed)."""
        with contextlib.suppress(DistributedError):  # a replica that cannot load is reported as None below
            self._settle_loads()
        states: list[object] = []
        for replica in self.replicas:
            try:
                states.append(
                    wait_for(replica.handle.rng_state.remote(), role=ROLE, method="rng_state", timeout=self._start)
                )
            except (DistributedError, *ACTOR_GONE):
                states.append(None)
        # Replica 0's state at the top level too: a local run resumed from this checkpoint reads it.
        return {**(states[0] or {}), "replicas": states}  # type: ignore[dict-item]

    def set_rng_state(self, state: dict[str, object]) -> None:
        self._settle_loads()
        saved = state.get("replicas")
        if not isinstance(saved, list):  # a local run's checkpoint: its one engine is replica 0
            saved = [state]
        for replica, replica_state in zip(self.replicas, saved, strict=False):
            if replica_state is not None:
                self._call(replica, "set_rng_state", replica_state)

    def _call(self, replica: Replica, method: str, *args: Any) -> Any:
        while True:
            try:
                return wait_for(
                    getattr(replica.handle, method).remote(*args),
                    role=ROLE,
                    method=method,
                    timeout=self.config.call_timeout_seconds,
                )
            except ACTOR_GONE as error:
                self._recover(replica, f"{method} failed: {error}", hung=False)

    # ---- metrics and shutdown --------------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """Per replica: pid, weight version, restarts, tokens/s of its compute time; and the seconds spent
        moving weights and data since the last call (reset here)."""
        out: dict[str, float] = {}
        for r in self.replicas:
            prefix = f"distributed/engine{r.index}"
            out[f"{prefix}/pid"] = float(r.pid)
            out[f"{prefix}/weight_version"] = float(self._weights_version)
            out[f"{prefix}/restarts"] = float(r.restarts)
            out[f"{prefix}/tokens_per_second"] = r.tokens / r.compute_seconds if r.compute_seconds else 0.0
            r.tokens, r.compute_seconds = 0, 0.0
        out["distributed/engine_restarts"] = float(self._budget.total)
        out["distributed/weight_push_seconds"] = self._metrics["weight_push_seconds"]
        out["distributed/transfer_seconds"] = self._metrics["transfer_seconds"]
        self._metrics = {"weight_push_seconds": 0.0, "transfer_seconds": 0.0}
        return out

    def close(self) -> None:
        for replica in self.replicas:
            ray.kill(replica.handle, no_restart=True)
        self.replicas = []


class _Call:
    """One `generate` call over the replicas: a thread per shard consumes its replica's stream into one
    queue; the caller's thread runs `on_finish` / `should_abort` and assembles the results in order."""

    def __init__(
        self,
        replicas: EngineReplicas,
        requests: list[GenerationRequest],
        sampling: SamplingSettings,
        on_finish: Callable[[int, Generation], bool] | None,
        should_abort: Callable[[], bool] | None,
    ) -> None:
        self.owner = replicas
        self.requests, self.sampling = requests, sampling
        self.on_finish, self.should_abort = on_finish, should_abort
        self.call_id = uuid.uuid4().hex
        self.results: list[Generation | None] = [None] * len(requests)
        self.events: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        self.aborted = threading.Event()
        self.deadline = replicas._deadline(sampling, requests)

    def run(self) -> list[Generation]:
        started = time.perf_counter()
        bounds = shard_bounds(len(self.requests), len(self.owner.replicas))
        threads = [
            threading.Thread(target=self._drive, args=(shard, a, b), name=f"reasonrl-shard-{shard}", daemon=True)
            for shard, (a, b) in enumerate(bounds)
        ]
        for thread in threads:
            thread.start()
        pending, failure, compute = set(range(len(bounds))), None, 0.0
        try:
            while pending:
                try:
                    kind, shard, payload = self.events.get(timeout=0.01)
                except queue.Empty:
                    if self.should_abort is not None and not self.aborted.is_set() and self.should_abort():
                        self._abort()
                    continue
                if kind == "finished":
                    self._finished(*payload)
                elif kind == "done":
                    rest, seconds = payload
                    compute = max(compute, seconds)
                    a = bounds[shard][0]
                    for row, generation in rest.items():
                        if self.results[a + row] is None:
                            self.results[a + row] = generation
                    pending.discard(shard)
                elif kind == "lost":  # after an abort: nothing more will come from this shard
                    a, b = bounds[shard]
                    for index in range(a, b):
                        if self.results[index] is None:
                            self.results[index] = Generation([], [], "abort")
                    pending.discard(shard)
                else:  # "failed": restarts exhausted or a replica did not come back
                    failure = failure or payload
                    self._abort()
                    pending.discard(shard)
        except BaseException:
            self._abort()
            for thread in threads:
                thread.join()
            raise
        for thread in threads:
            thread.join()
        if failure is not None:
            raise failure
        self.owner._metrics["transfer_seconds"] += max(0.0, time.perf_counter() - started - compute)
        return [g if g is not None else Generation([], [], "abort") for g in self.results]

    def _finished(self, index: int, generation: Generation) -> None:
        if self.results[index] is not None:  # reported before the replica died; the replay's copy is dropped
            return
        self.results[index] = generation
        if self.on_finish is not None and self.on_finish(index, generation):
            self._abort()

    def _abort(self) -> None:
        if self.aborted.is_set():
            return
        self.aborted.set()
        for replica in self.owner.replicas:
            replica.handle.abort.remote(self.call_id)

    def _drive(self, shard: int, start: int, end: int) -> None:
        """Stream shard [start, end) from its replica until done; on a death or a hang, recover the replica
        and replay the shard (or, after an abort, give up the shard's unfinished responses)."""
        replica = self.owner.replicas[shard]
        while True:
            try:
                if self.on_finish is None and self.should_abort is None:
                    self._whole(replica, shard, start, end)
                else:
                    self._stream(replica, shard, start, end)
                return
            except (_Hung, *ACTOR_GONE, GetTimeoutError) as error:
                hung = isinstance(error, _Hung | GetTimeoutError)
                cause = f"silent for {self.deadline:g} s" if hung else f"died: {type(error).__name__}"
                try:
                    self.owner._recover(replica, cause, hung=hung)
                except BaseException as failure:  # handed to the caller's thread
                    self.events.put(("failed", shard, failure))
                    return
                if self.aborted.is_set():
                    self.events.put(("lost", shard, None))
                    return
            except BaseException as failure:  # an engine error: the caller's thread raises it
                self.events.put(("failed", shard, failure))
                return

    def _submit_whole(self, replica: Replica, start: int, end: int) -> Any:
        return replica.handle.generate.remote(self.requests[start:end], self.sampling)

    def _whole(self, replica: Replica, shard: int, start: int, end: int) -> None:
        """A call nothing cuts short: one round trip per shard, no stream (5 ms less per call on the demo)."""
        ref = self._submit_whole(replica, start, end)
        ready, _ = ray.wait([ref], timeout=self.deadline)
        if not ready:
            raise _Hung()
        generations, seconds = ray.get(ref)
        replica.tokens += sum(len(g.response_ids) for g in generations)
        replica.compute_seconds += seconds
        self.events.put(("done", shard, (dict(enumerate(generations)), seconds)))

    def _stream(self, replica: Replica, shard: int, start: int, end: int) -> None:
        stream = replica.handle.generate_stream.options(num_returns="streaming").remote(
            self.call_id, self.requests[start:end], self.sampling
        )
        while True:
            ready, _ = ray.wait([stream], timeout=self.deadline)
            if not ready:
                raise _Hung()
            try:
                ref = next(stream)
            except StopIteration:
                return
            kind, payload = ray.get(ref, timeout=self.deadline)
            if kind == "finished":
                for row, generation in payload:
                    replica.tokens += len(generation.response_ids)
                    self.events.put(("finished", shard, (start + row, generation)))
            else:
                rest, seconds = payload
                replica.tokens += sum(len(g.response_ids) for g in rest.values())
                replica.compute_seconds += seconds
                self.events.put(("done", shard, payload))
