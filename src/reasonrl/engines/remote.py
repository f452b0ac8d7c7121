"""A rollout engine in a process of its own, driven through a pipe: the async pipeline's vLLM engine.

vLLM's scheduler and detokenizer are Python; in the learner's process they would hold the GIL against the
training loop. In a spawned process of its own the engine has its own interpreter, and the learner thread
only waits when it asks for something. The pipe is `torch.multiprocessing`'s, so weight tensors cross it
through shared memory (CPU) or CUDA IPC handles (GPU) rather than being pickled byte by byte.

One call at a time: the async producer is this engine's only user (a lock makes that a rule, not a hope).
`generate(..., on_finish=...)` streams: the child sends each response the step it ends, the parent's
`on_finish` decides, and an abort travels back. The child checks for it after every decode step, so a
partial-rollout abort lands a step or so later than in process, never earlier.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import torch
import torch.multiprocessing as torch_mp
from transformers import PreTrainedTokenizerBase

from reasonrl.engines.base import Engine, Generation, GenerationRequest, SamplingSettings, TokenScores
from reasonrl.engines.stops import response_text

# A spawned interpreter imports torch and transformers (and vLLM compiles) before it answers.
_START_SECONDS = 600.0
# How often a streaming call asks `should_abort` while the child decodes (well under one decode step).
_ABORT_POLL_SECONDS = 0.01


class EngineStartError(RuntimeError):
    """The engine process died or failed while building its engine; the message carries its traceback."""


class EngineProcess:
    """`factory(**kwargs)` built and run in a spawned process, with the `Engine` interface here.

    `factory` must be importable by name (a class or a module-level function), since the child imports it.
    `tokenizer` decodes response text on this side (`text`), as the hf engine does.
    """

    def __init__(
        self, factory: Callable[..., Engine], kwargs: dict[str, Any], tokenizer: PreTrainedTokenizerBase
    ) -> None:
        self.tokenizer = tokenizer
        self.version = 0
        context = torch_mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, factory, kwargs), name="reasonrl-engine", daemon=True
        )
        self._process.start()
        child.close()
        self._lock = threading.Lock()
        self._closed = False
        self._call("ready", timeout=_START_SECONDS)

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingSettings,
        *,
        on_finish: Callable[[int, Generation], bool] | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> list[Generation]:
        """Generations in request order. With `on_finish`, the child streams each response as it ends; once
        `on_finish` returns True, or `should_abort()` does (polled every few milliseconds while waiting), an
        abort goes back and the responses still running come back cut off. If `on_finish` raises, the call
        is aborted and drained before the error propagates, so the pipe stays in step for the next call."""
        if on_finish is None:
            generations: list[Generation] = self._call("generate", list(requests), sampling)
            return generations
        with self._lock:
            self._send("generate_streaming", (list(requests), sampling))
            abort_sent = False
            failure: BaseException | None = None
            while True:
                if not abort_sent and should_abort is not None and self._abort_requested(should_abort):
                    self._conn.send(("abort", ()))
                    abort_sent = True
                status, value = self._receive("generate_streaming", timeout=None)
                if status != "finished":
                    if failure is not None:  # on_finish's error first; the child's, if any, as a note
                        if status == "error":
                            failure.add_note(f"the engine process then failed too:\n{value}")
                        raise failure
                    return self._result("generate_streaming", status, value)  # type: ignore[no-any-return]
                if failure is not None:
                    continue  # draining what the child sent before it saw the abort
                index, generation = value
                try:
                    stop = on_finish(index, generation)
                except BaseException as error:  # re-raised once the child has answered
                    failure, stop = error, True
                if stop and not abort_sent:
                    self._conn.send(("abort", ()))  # a late abort (the call already ended) is ignored there
                    abort_sent = True

    def _abort_requested(self, should_abort: Callable[[], bool]) -> bool:
        """Wait for the child's next message, answering True as soon as `should_abort()` does first. It is
        asked before every wait, so messages arriving faster than the poll interval cannot starve it."""
        while True:
            if should_abort():
                return True
            if self._conn.poll(_ABORT_POLL_SECONDS):  # a dead child makes the pipe readable too
                return False

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]], version: int) -> None:
        self._call("update_weights", [(name, tensor.detach()) for name, tensor in named_tensors], version)
        self.version = version

    def text(self, tokens: Sequence[int], sampling: SamplingSettings) -> str:
        return response_text(self.tokenizer, tokens, sampling.stop)

    def score(self, requests: Sequence[GenerationRequest], distributions: bool = False) -> list[TokenScores]:
        scores: list[TokenScores] = self._call("score", list(requests), distributions)
        return scores

    def rng_state(self) -> dict[str, object]:
        state: dict[str, object] = self._call("rng_state")
        return state

    def set_rng_state(self, state: dict[str, object]) -> None:
        self._call("set_rng_state", state)

    def close(self) -> None:
        """Stop the process (it closes its engine first); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            with self._lock:
                self._conn.send(("close", ()))
            self._process.join(timeout=60)
        except (BrokenPipeError, EOFError, OSError):
            pass
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def _call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        with self._lock:
            if method != "ready":
                self._send(method, args)
            status, value = self._receive(method, timeout)
        return self._result(method, status, value)

    def _send(self, method: str, args: tuple[Any, ...]) -> None:
        if self._closed:
            raise RuntimeError(f"EngineProcess.{method}: the engine process is closed")
        self._conn.send((method, args))

    def _receive(self, method: str, timeout: float | None) -> tuple[str, Any]:
        if not self._conn.poll(timeout):  # a dead child makes the pipe readable: recv raises EOFError
            self._process.kill()
            raise EngineStartError(
                f"the engine process did not answer {method!r} within {timeout} s "
                f"(exit code {self._process.exitcode}); see its output above"
            )
        try:
            message: tuple[str, Any] = self._conn.recv()
        except EOFError:
            raise EngineStartError(
                f"the engine process exited (code {self._process.exitcode}) during {method!r}; "
                "see its output above (out of memory kills it silently)"
            ) from None
        return message

    @staticmethod
    def _result(method: str, status: str, value: Any) -> Any:
        if status == "error":
            raise EngineStartError(f"the engine process failed in {method!r}:\n{value}")
        return value


def _serve(conn: Connection, factory: Callable[..., Engine], kwargs: dict[str, Any]) -> None:
    """The child: build the engine, report ready (or the failure), then answer calls until `close`."""
    try:
        engine = factory(**kwargs)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ok", None))
    while True:
        try:
            method, args = conn.recv()
        except EOFError:  # the parent is gone
            break
        if method == "close":
            break
        if method == "abort":  # arrived after its streaming call had ended
            continue
        stream = _Stream(conn)
        try:
            if method == "generate_streaming":
                result = engine.generate(*args, on_finish=stream.report, should_abort=stream.poll)  # type: ignore[call-arg]
            else:
                result = getattr(engine, method)(*args)
            reply = ("ok", result)
        except BaseException:
            reply = ("error", traceback.format_exc())
        if stream.closing:  # the parent left mid-call and is waiting for the exit, not for this answer
            break
        conn.send(reply)
    engine.close()


class _Stream:
    """`on_finish` and `should_abort` in the child: send each finished response; both answer True once the
    parent has asked to abort (checked without blocking, at every finish and after every decode step). A
    `close` read here (the parent gave up on the call) aborts too, and ends the serving loop after it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.aborted = False
        self.closing = False

    def poll(self) -> bool:
        while not self.aborted and self.conn.poll():
            method = self.conn.recv()[0]
            self.closing = method == "close"
            self.aborted = method in ("abort", "close")
        return self.aborted

    def report(self, index: int, generation: Generation) -> bool:
        self.conn.send(("finished", (index, generation)))
        return self.poll()
