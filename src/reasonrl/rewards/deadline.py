"""Wall-clock limits on a function call that work on any thread.

verl, TRL and AReaL all lost rewards to the same bug: math-verify's `signal.alarm` timeout works only on
the main thread, so inside a Ray actor or a thread pool it either raises or silently does nothing, and a
pathological expression hangs the worker. Here the limit is chosen by where the call runs:

- On the main thread of a process (reward workers, the CLI), `signal.setitimer(ITIMER_REAL)` interrupts
  the call. Nested limits share the one timer; an outer limit that was already armed (pytest-timeout, a
  caller's own alarm) is paused and re-armed with its remaining time afterwards.
- On any other thread, the call runs in a helper process (`isolated.py`) that is killed and replaced if it
  does not answer in time. That costs a round trip, but it is the only limit Python can enforce there.

The alarm raises a private `BaseException`, not an `Exception`: math-verify and sympy wrap much of their
work in `except Exception`, which would otherwise swallow the interruption and keep computing. Callers see
it as `DeadlineExceeded`, a `TimeoutError`.

A signal can only interrupt Python bytecode: C code that never returns to the interpreter (one huge integer
power) is beyond it. The reward pool therefore also kills a worker that overruns its limit from outside.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# A timer that fires this early counts as on time: ITIMER_REAL and time.monotonic are different clocks.
_CLOCK_SLACK = 1e-3


class DeadlineExceeded(TimeoutError):
    """A call ran past its wall-clock limit and was stopped."""


class _Expired(BaseException):
    """Raised by the alarm handler inside the limited call; `depth` names the limit that ran out."""

    def __init__(self, depth: int) -> None:
        super().__init__(depth)
        self.depth = depth


# Main-thread state. `_deadlines` holds the absolute monotonic deadlines of the active nested calls,
# outermost first; `_paused` the alarm handler, deadline and interval that were in place before the first.
_deadlines: list[float] = []
_paused: tuple[Any, float | None, float] = (signal.SIG_DFL, None, 0.0)


def call_with_deadline(fn: Callable[..., T], *args: Any, seconds: float, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`, stopped with `DeadlineExceeded` if it runs longer than `seconds`.

    Off the main thread `fn`, its arguments and its result must pickle (module-level functions do), since
    the call then runs in a helper process.
    """
    check_seconds(seconds, "call_with_deadline: seconds")
    if _timer_available():
        return _call_with_timer(fn, args, kwargs, seconds)
    from reasonrl.rewards.isolated import (
        call_isolated,
    )  # here, not at the top: isolated.py imports this module

    return call_isolated(fn, args, kwargs, seconds)


def check_seconds(value: Any, what: str) -> float:
    """`value` as a float if it is a positive, finite number of seconds, else a ValueError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{what} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def _timer_available() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _call_with_timer(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float) -> T:
    depth = _enter(seconds)
    try:
        try:
            return fn(*args, **kwargs)
        finally:
            _leave(depth)
    except _Expired as expired:
        # The alarm may also land inside `_leave`; running it again is harmless and completes the cleanup.
        _leave(depth)
        if expired.depth != depth:
            raise  # an enclosing limit ran out: let the call that set it report it
        raise DeadlineExceeded(f"stopped after {seconds:g} s (the wall-clock limit)") from None


def _enter(seconds: float) -> int:
    global _paused
    now = time.monotonic()
    if not _deadlines:
        # Pause a foreign timer before taking over the handler, so it cannot fire into ours and be lost.
        remaining, interval = signal.setitimer(signal.ITIMER_REAL, 0)
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        _paused = (previous, now + remaining if remaining > 0 else None, interval)
    _deadlines.append(now + seconds)
    _arm(now)
    return len(_deadlines) - 1


def _leave(depth: int) -> None:
    # Forget this limit first: an alarm delivered during the rest of the cleanup then finds no expired limit
    # of ours and does nothing, unless an enclosing limit really has run out.
    del _deadlines[depth:]
    if _deadlines:
        _arm(time.monotonic())
    else:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _restore_paused()


def _restore_paused() -> None:
    # A separate function on purpose: entering it lets Python run an alarm that arrived just before the timer
    # was disarmed, while our (now idle) handler is still installed, instead of handing it to the old one.
    previous, deadline, interval = _paused
    signal.signal(signal.SIGALRM, previous)
    if deadline is not None:
        signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), _CLOCK_SLACK), interval)


def _arm(now: float) -> None:
    signal.setitimer(signal.ITIMER_REAL, max(min(_deadlines) - now, _CLOCK_SLACK))


def _on_alarm(signum: int, frame: object) -> None:
    now = time.monotonic()
    for depth, deadline in enumerate(_deadlines):
        if deadline <= now + _CLOCK_SLACK:
            raise _Expired(depth)
    if _deadlines:
        _arm(now)
