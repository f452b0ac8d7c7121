"""Running a call in a helper process that can be killed: the deadline for threads other than the main one.

Python cannot interrupt a thread, so a call with a limit made from a worker thread (a thread pool in the
trainer, an async server's executor) is shipped to a helper process instead. The helper enforces the limit
itself with the main-thread timer and answers in time in the common case; if it does not answer within a
grace period after the limit (a hang in C code), it is killed and the next call starts a fresh one.

Helpers are kept and reused, one per concurrent caller, so only the first call of a thread pays the start.
"""

from __future__ import annotations

import atexit
import pickle
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from reasonrl.rewards.deadline import DeadlineExceeded, call_with_deadline
from reasonrl.rewards.processes import adopt_import_path, import_path, scoring_context

# Beyond the limit, how long a helper may take to report its own timeout before it is killed.
_GRACE_SECONDS = 1.0
_START_SECONDS = 120.0


class _Helper:
    """One helper process and the parent's end of its pipe."""

    def __init__(self) -> None:
        context = scoring_context()
        self.conn, child_conn = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=_serve, args=(child_conn, import_path()), name="reasonrl-deadline-helper", daemon=True
        )
        self.process.start()
        child_conn.close()

    def close(self) -> None:
        """Stop the process now; a helper is only closed when its call is abandoned or at exit."""
        self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


_idle: list[_Helper] = []
_lock = threading.Lock()


def call_isolated(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float) -> Any:
    """`fn(*args, **kwargs)` in a helper process, with `DeadlineExceeded` after `seconds`."""
    with _lock:
        helper = _idle.pop() if _idle else None
    if helper is None or not helper.process.is_alive():
        helper = _Helper()
    try:
        helper.conn.send((fn, args, kwargs, seconds))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        _release(helper)  # nothing was written: the helper is still in step
        raise TypeError(
            f"off the main thread a call with a deadline runs in a helper process, so {fn!r}, its arguments "
            f"and its result must pickle (use a module-level function): {exc}"
        ) from exc
    try:
        # The helper first acknowledges the call: starting a fresh helper and importing the function's
        # module are not the call's time, and must not count against its limit.
        status, value = _receive(helper, _START_SECONDS)
        if status == "started":
            status, value = _receive(helper, seconds + _GRACE_SECONDS)
    except BaseException:
        # The call was abandoned half-way (killed, died, KeyboardInterrupt): its answer may still come and
        # would be read as the next call's, so this helper is never reused.
        helper.close()
        raise
    _release(helper)
    if status == "ok":
        return value
    if status == "timeout":
        raise DeadlineExceeded(value)
    raise value


def _receive(helper: _Helper, seconds: float) -> tuple[str, Any]:
    if not helper.conn.poll(seconds):
        raise DeadlineExceeded(f"no answer after {seconds:g} s; the helper process was killed")
    try:
        return helper.conn.recv()
    except EOFError as exc:
        helper.process.join(timeout=5)
        raise RuntimeError(
            f"the helper process running a call with a deadline died (exit code {helper.process.exitcode})"
        ) from exc


def _release(helper: _Helper) -> None:
    with _lock:
        _idle.append(helper)


def _serve(conn: Connection, path: list[str]) -> None:
    """Helper main loop: run each call under the main-thread timer and send back its outcome."""
    # Ctrl-C reaches the whole process group; the caller decides what it means, not the helper.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    adopt_import_path(path)
    while True:
        try:
            fn, args, kwargs, seconds = conn.recv()
        except EOFError:
            return
        except Exception as exc:  # the call did not unpickle here (its module is not importable)
            _answer(conn, ("error", exc))
            continue
        conn.send(("started", None))
        try:
            outcome: tuple[str, Any] = ("ok", call_with_deadline(fn, *args, seconds=seconds, **kwargs))
        except DeadlineExceeded as exc:
            outcome = ("timeout", str(exc))
        except Exception as exc:
            outcome = ("error", exc)
        _answer(conn, outcome)


def _answer(conn: Connection, outcome: tuple[str, Any]) -> None:
    try:
        conn.send(outcome)
    except Exception as exc:  # an unpicklable result or exception still gets an answer across
        conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc} (while returning {outcome[0]})")))


@atexit.register
def _close_idle() -> None:
    with _lock:
        while _idle:
            _idle.pop().close()
