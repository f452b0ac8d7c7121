"""The rollout producer of the async pipeline: a thread that generates batches ahead of the learner.

It owns a generation engine on its own copy of the weights, so the learner can update its module while
generation runs (torch releases the GIL inside kernels, so on a CPU the two threads really overlap). New
weights arrive through `publish` as a snapshot and are loaded only between generate calls, under the
engine lock, so no generate call mixes two versions (a partial rollout continued later records the new
version on its new tokens).

Admission control keeps the staleness bound without wasting work: batch k (counted in learner steps) is
trained at policy version k, so it may start only once version k - max_staleness is published. With
`max_staleness: 0` the producer waits for every update, which makes it deterministic (the sync pipeline's
samples). What goes into a batch (partial rollouts, group-wise filtering, selective rollouts) is the
`RolloutScheduler`'s job. The learner still checks the bound on what it receives (`rollout.staleness`),
and hands back the prompts of anything too old through `requeue`.

Nothing waits for a whole generate call: `stop()` and `paused()` (what a checkpoint takes to read the
engine's RNG) make the engine abort after its current decode step (`should_abort`), the responses cut off
stay in the scheduler's pool, and generation continues them once the pause ends. So Ctrl-C, an error on
the learner and a checkpoint take effect within about one decode step, whatever the generation length.

Every prompt drawn and neither trained on nor retired (filtered out, skipped) is `outstanding`; a
checkpoint saves their ids with the sampler cursor and the responses in flight, and resume continues
those and generates the rest first, so across a crash no prompt is skipped or trained twice.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from reasonrl.data import Prompt, PromptSampler
from reasonrl.engines.base import SamplingSettings, StreamingEngine
from reasonrl.rollout.collect import PromptEncoder
from reasonrl.rollout.episodes import EpisodeDriver
from reasonrl.rollout.greso import SelectiveRollouts
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.scheduler import GenerationStopped, RolloutScheduler, SchedulerSettings, Scores
from reasonrl.rollout.speculative import SpeculativeRollouts
from reasonrl.rollout.tree import TreeRollouts


def weight_snapshot(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A copy of the learner's weights: it keeps training its own tensors while the producer loads these.
    Weights a learner rank published to the object store (`distributed.weights.Published`) are immutable and
    pass as they are."""
    if getattr(named_tensors, "is_snapshot", False):
        return named_tensors  # type: ignore[return-value]
    return {name: tensor.detach().clone() for name, tensor in named_tensors}


@dataclass
class RolloutBatch:
    """One batch of scored groups; `index` is the learner step it was admitted for, `metrics` what
    producing it took (generate calls, aborts, filtered and skipped groups)."""

    index: int
    samples: list[Sample]
    metrics: dict[str, float]


@dataclass
class ProducerTimes:
    """Seconds the producer spent per activity since the last `lap`."""

    generate: float = 0.0
    idle: float = 0.0
    weight_load: float = 0.0


class RolloutProducer:
    """Produces batches of `settings.prompts_per_batch` scored groups on a thread, at most
    `settings.max_staleness` steps ahead of the learner."""

    def __init__(
        self,
        engine: StreamingEngine,
        encode: PromptEncoder,
        sampling: SamplingSettings,
        sampler: PromptSampler,
        settings: SchedulerSettings,
        *,
        score: Callable[[list[Sample]], Scores],
        version: int,
        last_index: int,
        pending: Sequence[Prompt] = (),
        selective: SelectiveRollouts | None = None,
        speculative: SpeculativeRollouts | None = None,
        tree: TreeRollouts | None = None,
        episodes: EpisodeDriver | None = None,
        on_generate: Callable[[int], None] | None = None,
        num_threads: int | None = None,
    ) -> None:
        """`version`: the learner's current version (the engine holds its weights); `last_index`: no batch
        is admitted for a step at or past it; `pending`: prompts to generate before drawing new ones
        (the outstanding prompts of a checkpoint); `score(samples)`: starts scoring, see `RolloutScheduler`;
        `on_generate(index)`: called before each batch is produced (tests inject delays with it);
        `num_threads`: torch intra-op threads of the producer thread (None = the process default)."""
        self.engine = engine
        self.sampler = sampler
        self.max_staleness = settings.max_staleness
        self.headroom = settings.headroom
        self.last_index = last_index
        self.on_generate = on_generate
        self.num_threads = num_threads
        self._published = version
        self._weights: dict[str, torch.Tensor] | None = None
        self._next_index = version
        self._requeued: deque[Prompt] = deque(pending)
        self._outstanding: list[Prompt] = list(pending)
        self._ready: queue.Queue[RolloutBatch] = queue.Queue()
        self._times = ProducerTimes()
        self._lock = threading.Condition()  # an RLock inside: the scheduler calls back into _draw under it
        self._engine_lock = threading.RLock()  # reentrant: a checkpoint reads the RNG inside `paused()`
        self._pauses = 0  # `paused()` callers waiting for or holding the engine
        self._stopping = False
        self._error: BaseException | None = None
        self.scheduler = RolloutScheduler(
            engine,
            encode,
            sampling,
            settings,
            score=score,
            draw=self._draw,
            discard=self._retire,
            lock=self._lock,
            selective=selective,
            speculative=speculative,
            tree=tree,
            episodes=episodes,
            engine_turn=self._engine_turn,
            should_abort=self._interrupted,
        )
        self._thread = threading.Thread(target=self._loop, name="rollout-producer", daemon=True)

    def restore(self, state: dict[str, Any], prompts_by_id: dict[str, Prompt]) -> None:
        """Continue a checkpoint's responses in flight (before start); their prompts stay outstanding."""
        in_pool = self.scheduler.load_state_dict(state, prompts_by_id)
        self._requeued = deque(_restored_pending(self._requeued, in_pool))
        self._outstanding = [*in_pool, *self._requeued]

    # ---- learner side ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop within about one decode step: the generate call in progress aborts, and its responses stay in
        the pool, their prompts outstanding (a checkpoint keeps both)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread.ident is not None:  # started (joining a never-started thread raises)
            self._thread.join()

    def close(self) -> None:
        """Stop, then release the engine (an engine process exits)."""
        self.stop()
        self.engine.close()

    def publish(self, snapshot: dict[str, torch.Tensor], version: int) -> None:
        """Offer new weights (a `weight_snapshot`), loaded before the next generate call."""
        with self._lock:
            self._weights, self._published = snapshot, version
            self._lock.notify_all()

    def next_batch(self) -> RolloutBatch:
        """The oldest generated batch, waiting for one; re-raises whatever stopped the producer thread."""
        while True:
            alive = self._thread.is_alive()  # read first: a thread that puts its last batch and ends is no loss
            try:
                return self._ready.get(timeout=0.05)
            except queue.Empty:
                pass
            if self._error is not None:
                raise RuntimeError("the rollout producer thread failed") from self._error
            if not alive:
                raise RuntimeError("the rollout producer thread stopped while the learner waits for a batch")

    def requeue(self, prompts: Sequence[Prompt]) -> None:
        """Generate these prompts again, before any new one (they stay outstanding until trained on)."""
        with self._lock:
            self._requeued.extendleft(reversed(prompts))
            self._lock.notify_all()

    def mark_trained(self, prompts: Sequence[Prompt]) -> None:
        with self._lock:
            for prompt in prompts:
                self._outstanding.remove(prompt)

    def state_dict(self) -> dict[str, Any]:
        """The sampler cursor, the ids of prompts drawn but not trained on (oldest first) and the responses
        in flight, all taken at one moment."""
        with self._lock:
            return {
                "sampler": self.sampler.state_dict(),
                "outstanding": [p.id for p in self._outstanding],
                "rollouts": self.scheduler.state_dict(),
            }

    def engine_rng_state(self) -> dict[str, object]:
        with self._engine_lock:
            return self.engine.rng_state()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the engine between two decode steps: the generate call in progress aborts (its responses are
        continued afterwards), so `state_dict` and `engine_rng_state` taken inside describe one moment."""
        with self._lock:
            self._pauses += 1
        try:
            with self._engine_lock:
                yield
        finally:
            with self._lock:
                self._pauses -= 1
                self._lock.notify_all()

    def skip_batch(self) -> None:
        """The learner dropped a whole batch as too stale: produce one more, admitted for the same learner
        step (batches are labelled by the version that will train them, and that version did not move)."""
        with self._lock:
            self._next_index -= 1
            self._lock.notify_all()

    def lap(self) -> dict[str, float]:
        """Producer-side seconds since the last lap, and how many batches wait for the learner."""
        with self._lock:
            times, self._times = self._times, ProducerTimes()
        return {
            "async/generate_seconds": times.generate,
            "async/generation_idle_seconds": times.idle,
            "async/weight_load_seconds": times.weight_load,
            "async/queued_batches": float(self._ready.qsize()),
        }

    # ---- producer thread ---------------------------------------------------------------------------
    def _admitted(self) -> bool:
        ahead = self.max_staleness - self.headroom
        return self._next_index < self.last_index and self._published >= self._next_index - ahead

    def _interrupted(self) -> bool:
        """Polled by the engine after every decode step (plain reads: a late answer costs one step)."""
        return self._stopping or self._pauses > 0

    @contextmanager
    def _engine_turn(self) -> Iterator[None]:
        """The engine for one generate call: after any pause, never once stopping (`GenerationStopped`)."""
        with self._lock:
            while self._pauses and not self._stopping:
                self._lock.wait()
            if self._stopping:
                raise GenerationStopped
        with self._engine_lock:
            yield

    def _loop(self) -> None:
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)  # this thread's OpenMP team only; the learner keeps its own
        try:
            while True:
                with self._lock:
                    waited = time.perf_counter()
                    while not self._stopping and not self._admitted():
                        self._lock.wait()
                    self._times.idle += time.perf_counter() - waited
                    if self._stopping:
                        return
                    index = self._next_index
                    self._next_index += 1
                if self.on_generate is not None:
                    self.on_generate(index)
                with self._engine_lock:
                    self._load_newest_weights()
                started = time.perf_counter()
                produced = self.scheduler.produce(index)
                seconds = time.perf_counter() - started
                with self._lock:
                    self._times.generate += seconds
                self._ready.put(RolloutBatch(index, produced.samples, produced.metrics))
        except GenerationStopped:
            return
        except BaseException as error:  # handed to the learner by next_batch
            self._error = error

    def _draw(self, count: int) -> list[Prompt]:
        """Requeued prompts first, then new ones from the sampler; all outstanding until trained or retired."""
        with self._lock:
            prompts = [self._requeued.popleft() for _ in range(min(len(self._requeued), count))]
            if len(prompts) < count:
                fresh = self.sampler.next_batch(count - len(prompts))
                self._outstanding.extend(fresh)
                prompts.extend(fresh)
            return prompts

    def _retire(self, prompt: Prompt) -> None:
        """A prompt that will not be trained on (filtered out or skipped) stops being outstanding."""
        with self._lock:
            self._outstanding.remove(prompt)

    def _load_newest_weights(self) -> None:
        with self._lock:
            weights, version = self._weights, self._published
            self._weights = None
        if weights is None:
            return
        started = time.perf_counter()
        self.engine.update_weights(weights.items(), version)
        with self._lock:
            self._times.weight_load += time.perf_counter() - started


def _restored_pending(outstanding: Sequence[Prompt], in_pool: Sequence[Prompt]) -> list[Prompt]:
    """The outstanding prompts not already in the restored pool (a multiset difference, oldest first)."""
    remaining = [p.id for p in in_pool]
    pending = []
    for prompt in outstanding:
        if prompt.id in remaining:
            remaining.remove(prompt.id)
        else:
            pending.append(prompt)
    return pending
