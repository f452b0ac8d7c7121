"""`RewardPool`: scores batches in worker processes so that no reward can crash, hang or stall the run.

Each worker scores small chunks of samples and reports every result as soon as it has it, so the pool
always knows which sample a worker is on and since when. Three layers keep a bad reward contained:

1. inside the worker, a reward that raises scores 0 with its error (`single_response.score_sample`);
2. inside the worker, a soft wall-clock limit (the main-thread timer of `deadline.py`) stops a slow one;
3. in the pool, a worker that passes the limit plus a grace period without answering (a hang in C code that
   no signal interrupts) is killed, and one that dies (a segfault, `os._exit`, the OOM killer) is noticed.
   The sample it was on scores 0 with the reason, its other samples go back to the queue, and a new
   worker takes its place. No other sample is lost or re-ordered.

A response that a verifier could not judge at all (`RewardUnavailable`: a code sandbox that did not start)
is scored once more in the same batch; a failure to start is often a passing shortage of processes or
memory. If it fails again the result stays `excluded`, for the caller to set aside.

Workers live as long as the pool; verifiers are built in them once, ahead of scoring. `submit` hands a
batch to a dispatcher thread and returns at once, so a caller (the rollout scheduler) goes on decoding
while the workers score; the dispatcher scores batches one after another, in submission order, under the
same three layers.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import pickle
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from reasonrl.rewards.deadline import check_seconds
from reasonrl.rewards.excluded import retry_excluded
from reasonrl.rewards.processes import import_path, scoring_context
from reasonrl.rewards.single_response import RewardResult, Term, score_sample, term_key, verifier_for
from reasonrl.rewards.worker import serve

if TYPE_CHECKING:
    from reasonrl.config.schema import RewardConfig
    from reasonrl.data.records import Prompt

T = TypeVar("T")

Job = tuple[Sequence[Term], Any, Any, Any]
"""What a worker needs to score one response: (terms, response, answer, meta)."""

# A worker that reports nothing for `timeout + grace` seconds is killed; its own soft limit fires first.
_GRACE_SECONDS = 1.0
# Start-up and warm-up (imports) are not any sample's time, but they must end.
_START_SECONDS = 120.0
_MAX_START_FAILURES = 3
_MAX_CHUNK = 32


class TermLike(Protocol):
    """What the pool needs of a `RewardTerm` from the config."""

    name: str
    weight: float
    options: dict[str, Any]


class _Worker:
    """One worker process, the parent's end of its pipe, and the samples sent to it in order."""

    def __init__(self, terms: Sequence[Term], timeout_seconds: float) -> None:
        context = scoring_context()
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(
            target=serve,
            args=(child_conn, import_path(), list(terms), timeout_seconds),
            name="reasonrl-reward-worker",
            daemon=True,
        )
        self.process.start()
        child_conn.close()
        self.awaiting_ready = 1  # "ready" replies owed: one for start-up, one per warm-up
        self.pending: deque[int] = deque()
        # Start of the current wait: start-up, warm-up, or the sample at the head of `pending`.
        self.since = time.monotonic()

    @property
    def ready(self) -> bool:
        return self.awaiting_ready == 0

    def limit(self, timeout_seconds: float) -> float | None:
        """The monotonic time after which this worker counts as hung, or None when it owes nothing."""
        if not self.ready:
            return self.since + _START_SECONDS
        return self.since + timeout_seconds + _GRACE_SECONDS if self.pending else None

    def kill(self) -> None:
        """Stop the process at once: it may be stuck where no message reaches it."""
        self.process.kill()
        self.process.join(timeout=5.0)

    def stop(self) -> None:
        """Ask the worker to exit, then make sure it has."""
        with contextlib.suppress(OSError, ValueError):  # already gone
            self.conn.send(None)
        self.process.join(timeout=1.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5.0)
        self.conn.close()


def _stop_all(workers: list[_Worker]) -> None:
    while workers:
        workers.pop().stop()


class RewardPool:
    """Scores responses with per-sample wall-clock limits in `workers` processes (0 = in this process).

    With `terms` (the config's `reward.functions`) every response gets their weighted sum; without, each
    prompt is scored by the verifier named in `prompt.task` with options `prompt.meta["verifier_options"]`.
    Use as a context manager, or call `close()`: workers are processes and must be stopped. `score` and
    `submit` may be called from any thread; batches are scored in submission order. Workers start by
    forkserver (spawn where there is none), so, as with any such multiprocessing code, a script creating a
    pool needs an `if __name__ == "__main__":` guard: each worker imports the script's main module.
    """

    def __init__(
        self, terms: Sequence[TermLike] | None = None, workers: int = 2, timeout_seconds: float = 10.0
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"RewardPool: workers must be an integer >= 0 (0 = in-process), got {workers!r}")
        self.timeout_seconds = check_seconds(timeout_seconds, "RewardPool: timeout_seconds")
        self._known: dict[str, Term] = {}  # every term the workers have built, by term_key
        self._workers: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _stop_all, self._workers)  # also on a failed start below
        self._terms = tuple(self._learn((t.name, float(t.weight), dict(t.options))) for t in terms or ())
        self._workers.extend(_Worker(list(self._known.values()), self.timeout_seconds) for _ in range(workers))
        self._in_process = workers == 0
        self._closed = False
        self._start_failures = 0
        self._lock = threading.Lock()  # guards the batch queue and the dispatcher's start and end
        self._batches: deque[tuple[Sequence[Prompt], Sequence[str], Future[list[RewardResult]]]] = deque()
        self._dispatcher: threading.Thread | None = None
        # `close` writes here to wake a dispatcher waiting on its workers.
        self._wake_reader, self._wake_writer = multiprocessing.Pipe(duplex=False)

    @classmethod
    def from_config(cls, config: RewardConfig) -> RewardPool:
        """The pool the `reward` config section describes."""
        return cls(config.functions or None, workers=config.workers, timeout_seconds=config.timeout_seconds)

    def __enter__(self) -> RewardPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (they change when a worker is replaced)."""
        return [worker.process.pid for worker in self._workers if worker.process.pid is not None]

    def close(self) -> None:
        """Stop the workers; the pool cannot score afterwards. A batch being scored, or waiting to be, fails with
        a RuntimeError saying the pool was closed."""
        with self._lock:
            self._closed = True
            dispatcher = self._dispatcher
        if dispatcher is not None and dispatcher is not threading.current_thread():
            with contextlib.suppress(OSError):
                self._wake_writer.send(None)
            dispatcher.join()  # it leaves at its next look at the workers: the wake-up ends any wait
        self._finalizer()

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[RewardResult]:
        """One `RewardResult` per response, in order; `responses[i]` answers `prompts[i]`."""
        return self.submit(prompts, responses).result()

    def submit(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> Future[list[RewardResult]]:
        """Start scoring and return at once; the future's result is what `score` returns (or raises). With
        workers, a dispatcher thread (started on demand, gone when idle) scores the batches in submission
        order. In process (`workers=0`) the batch is scored here, before returning: in-process limits off the
        main thread would cost a helper process per sample, which is what workers are for."""
        if len(prompts) != len(responses):
            raise ValueError(f"RewardPool.score: {len(prompts)} prompts but {len(responses)} responses; pass one each")
        if self._in_process:
            return computed(self._score_now, prompts, responses)
        future: Future[list[RewardResult]] = Future()
        with self._lock:
            self._check_open()
            self._batches.append((prompts, responses, future))
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(
                    target=self._dispatch_batches, name="reasonrl-reward-dispatcher", daemon=True
                )
                self._dispatcher.start()
        return future

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("RewardPool.score: the pool is closed; create a new one")

    def _dispatch_batches(self) -> None:
        """The dispatcher thread: score queued batches in order until none is left. It holds the only
        reference that keeps the pool alive while it runs, so an idle pool can still be collected."""
        while True:
            with self._lock:
                if not self._batches:
                    self._dispatcher = None
                    return
                prompts, responses, future = self._batches.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._score_now(prompts, responses))
            except Exception as exc:
                future.set_exception(exc)

    def _score_now(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[RewardResult]:
        """`score`'s work, on the calling thread (the dispatcher's, with workers)."""
        return retry_excluded(self._score_once, prompts, responses, self._score_once(prompts, responses))

    def _score_once(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[RewardResult]:
        self._check_open()
        jobs = [
            (self._terms or self._task_terms(prompt), response, prompt.answer, prompt.meta)
            for prompt, response in zip(prompts, responses, strict=True)
        ]
        if self._in_process:
            return [score_sample(*job, self.timeout_seconds) for job in jobs]
        try:
            return self._run(jobs)
        except BaseException:
            if not self._closed:  # a failed batch: the workers' late answers must not meet the next batch
                self._replace_busy_workers()
            raise

    def _replace_busy_workers(self) -> None:
        for index, worker in enumerate(self._workers):
            if worker.pending:
                worker.kill()
                worker.conn.close()
                self._workers[index] = _Worker(list(self._known.values()), self.timeout_seconds)

    def _task_terms(self, prompt: Prompt) -> tuple[Term]:
        options = prompt.meta.get("verifier_options", {})
        if not isinstance(options, Mapping):
            raise ValueError(f"prompt {prompt.id!r}: meta['verifier_options'] must be a mapping, got {options!r}")
        try:
            return (self._learn((prompt.task, 1.0, dict(options))),)
        except ValueError as exc:
            raise ValueError(f"prompt {prompt.id!r} (task {prompt.task!r}): {exc}") from exc

    def _learn(self, term: Term) -> Term:
        """The term with its canonical verifier name, checked in this process and warmed in the workers.

        Checking here turns a misspelt verifier or option into one ValueError up front instead of a 0 reward
        on every sample.
        """
        key = term_key(term)
        known = self._known.get(key)
        if known is not None:
            return (known[0], term[1], known[2])
        _, weight, options = term
        known = (verifier_for(term).name, weight, options)
        self._known[key] = known
        for worker in self._workers:
            try:
                worker.conn.send(("warm", [known]))
            except OSError:
                continue  # a dead worker; its replacement starts with every known term
            worker.awaiting_ready += 1
            worker.since = time.monotonic()
        return known

    def _run(self, jobs: list[Job]) -> list[RewardResult]:
        results: list[RewardResult | None] = [None] * len(jobs)
        queue = deque(range(len(jobs)))
        solo: set[int] = set()  # samples to send alone (their batch did not unpickle in the worker)
        chunk = max(1, min(_MAX_CHUNK, math.ceil(len(jobs) / (4 * len(self._workers)))))
        # Every sample is always in exactly one place: the queue, a worker's pending deque, or `results`.
        while queue or any(worker.pending for worker in self._workers):
            self._check_open()
            for worker in self._workers:
                if worker.ready and not worker.pending and queue:
                    self._dispatch(worker, queue, chunk, solo, jobs, results)
            limits = [limit for w in self._workers if (limit := w.limit(self.timeout_seconds)) is not None]
            wait_for = max(0.0, min(limits) - time.monotonic()) if limits else None
            waits = [w.conn for w in self._workers] + [w.process.sentinel for w in self._workers]
            ready = wait([*waits, self._wake_reader], wait_for)
            for index, worker in enumerate(self._workers):
                exited = worker.process.sentinel in ready
                if exited or worker.conn in ready:
                    self._collect(index, exited, queue, solo, results)
                else:
                    self._enforce_limit(index, queue, results)
        return cast(list[RewardResult], results)

    def _dispatch(
        self,
        worker: _Worker,
        queue: deque[int],
        chunk: int,
        solo: set[int],
        jobs: list[Job],
        results: list[RewardResult | None],
    ) -> None:
        batch = [queue.popleft()]
        while queue and len(batch) < chunk and batch[0] not in solo and queue[0] not in solo:
            batch.append(queue.popleft())
        items = [(index, *jobs[index]) for index in batch]
        try:
            try:
                worker.conn.send(("score", items))
            except (pickle.PicklingError, TypeError, AttributeError):
                # Nothing was written (pickling comes first); send what pickles, fail the rest here.
                items = self._drop_unpicklable(items, results)
                if items:
                    worker.conn.send(("score", items))
        except OSError:
            queue.extendleft(reversed([item[0] for item in items]))  # the worker is gone; it gets replaced
            return
        worker.pending.extend(item[0] for item in items)
        worker.since = time.monotonic()

    @staticmethod
    def _drop_unpicklable(items: list[tuple[Any, ...]], results: list[RewardResult | None]) -> list[tuple[Any, ...]]:
        """The items that pickle; the others get a 0 result saying why."""
        kept = []
        for item in items:
            try:
                pickle.dumps(item)
            except Exception as exc:
                error = f"cannot send this sample to a reward worker ({exc}); keep answers and meta plain data"
                results[item[0]] = RewardResult(0.0, {}, error, 0.0)
            else:
                kept.append(item)
        return kept

    def _collect(
        self, index: int, exited: bool, queue: deque[int], solo: set[int], results: list[RewardResult | None]
    ) -> None:
        """Take in what worker `index` has sent; replace it if it has died."""
        worker = self._workers[index]
        if self._drain(worker, queue, solo, results) and not exited:
            self._enforce_limit(index, queue, results)
            return
        if exited:
            self._drain(worker, queue, solo, results)  # results it wrote just before dying are still valid
        worker.process.join(timeout=5.0)
        how = _describe_exit(worker.process.exitcode)
        doing = "scoring this sample" if worker.pending else "starting" if not worker.ready else "idle"
        self._replace(index, f"reward worker crashed while {doing} ({how}); it was replaced", queue, results)

    def _enforce_limit(self, index: int, queue: deque[int], results: list[RewardResult | None]) -> None:
        """Kill and replace worker `index` if it has owed an answer for longer than its limit."""
        worker = self._workers[index]
        limit = worker.limit(self.timeout_seconds)
        if limit is None or time.monotonic() <= limit:
            return
        overrun = time.monotonic() - worker.since
        worker.kill()
        reason = (
            f"timeout: no result after {overrun:.1f} s (limit {self.timeout_seconds:g} s, "
            "reward.timeout_seconds); the reward worker was killed and replaced"
        )
        self._replace(index, reason, queue, results)

    def _drain(self, worker: _Worker, queue: deque[int], solo: set[int], results: list[RewardResult | None]) -> bool:
        """Read every waiting message; False when the pipe reached its end (the worker is gone)."""
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                worker.since = time.monotonic()
                if message[0] == "ready":
                    worker.awaiting_ready -= 1
                    self._start_failures = 0
                elif message[0] == "result":
                    expected = worker.pending.popleft()
                    if message[1] != expected:
                        raise RuntimeError(f"reward worker answered sample {message[1]} while on {expected}")
                    results[expected] = message[2]
                else:  # "unreadable": the batch comes back; retry its samples one at a time
                    for sample in worker.pending:
                        if sample in solo:
                            error = f"the reward worker could not read this sample ({message[1]}); keep answers "
                            results[sample] = RewardResult(0.0, {}, error + "and prompt.meta plain data", 0.0)
                    retry = [sample for sample in worker.pending if sample not in solo]
                    solo.update(retry)
                    queue.extendleft(reversed(retry))
                    worker.pending.clear()
        except (EOFError, OSError):
            return False
        return True

    def _replace(self, index: int, reason: str, queue: deque[int], results: list[RewardResult | None]) -> None:
        worker = self._workers[index]
        if worker.pending:
            head = worker.pending.popleft()
            results[head] = RewardResult(0.0, {}, reason, time.monotonic() - worker.since)
            queue.extendleft(reversed(worker.pending))
        if not worker.ready:
            # Dying before ready is not one bad sample but a broken set-up: retrying forever would hang.
            self._start_failures += 1
            if self._start_failures >= _MAX_START_FAILURES:
                self.close()
                raise RuntimeError(
                    f"reward workers died {self._start_failures} times in a row while starting "
                    f"(last: {reason}); check that the reward modules import cleanly in a fresh process"
                )
        worker.conn.close()
        self._workers[index] = _Worker(list(self._known.values()), self.timeout_seconds)


def computed(call: Callable[..., T], *args: Any) -> Future[T]:
    """A done future holding `call(*args)`'s result or exception: `submit` for scoring that runs in line."""
    future: Future[T] = Future()
    future.set_running_or_notify_cancel()
    try:
        future.set_result(call(*args))
    except Exception as exc:
        future.set_exception(exc)
    return future


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
