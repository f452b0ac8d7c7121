"""Wall-clock limits on the main thread (interval timer) and on other threads (killable helper process)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from reasonrl.rewards import DeadlineExceeded, call_with_deadline

HANG_SECONDS = 60  # a hang that was not stopped would show as a test taking a minute


def swallow_everything() -> str:
    """Code that catches Exception around its work, as math-verify and sympy do."""
    try:
        time.sleep(HANG_SECONDS)
    except Exception:
        return "swallowed"
    return "finished"


def nested_inner_limit_expires() -> str:
    try:
        call_with_deadline(time.sleep, HANG_SECONDS, seconds=0.2)
    except DeadlineExceeded:
        return "inner stopped"
    return "inner finished"


def nested_outer_limit_expires() -> None:
    call_with_deadline(time.sleep, HANG_SECONDS, seconds=30)


def fail() -> None:
    raise KeyError("inside")


def on_thread(fn: Callable[[], Any]) -> tuple[Any, BaseException | None, float]:
    """Run `fn` on a fresh thread: (result, exception, seconds)."""
    outcome: dict[str, Any] = {"result": None, "error": None}

    def run() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as exc:
            outcome["error"] = exc

    start = time.perf_counter()
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(HANG_SECONDS)
    return outcome["result"], outcome["error"], time.perf_counter() - start


def test_main_thread_hang_is_stopped() -> None:
    start = time.perf_counter()
    with pytest.raises(DeadlineExceeded, match=r"stopped after 0\.3 s"):
        call_with_deadline(time.sleep, HANG_SECONDS, seconds=0.3)
    assert time.perf_counter() - start < 5


def test_worker_thread_hang_is_stopped() -> None:
    _, error, seconds = on_thread(lambda: call_with_deadline(time.sleep, HANG_SECONDS, seconds=0.3))
    assert isinstance(error, DeadlineExceeded) and "0.3 s" in str(error)
    assert seconds < 20  # includes starting the helper process the first time


def test_results_and_errors_pass_through_on_both_kinds_of_thread() -> None:
    assert call_with_deadline(pow, 2, 10, seconds=1) == 1024
    with pytest.raises(KeyError, match="inside"):
        call_with_deadline(fail, seconds=1)
    result, error, _ = on_thread(lambda: call_with_deadline(pow, 2, 10, seconds=5))
    assert (result, error) == (1024, None)
    _, error, _ = on_thread(lambda: call_with_deadline(fail, seconds=5))
    assert isinstance(error, KeyError)


def test_except_exception_cannot_swallow_the_limit() -> None:
    with pytest.raises(DeadlineExceeded):
        call_with_deadline(swallow_everything, seconds=0.2)


def test_nested_limits() -> None:
    assert call_with_deadline(nested_inner_limit_expires, seconds=30) == "inner stopped"
    start = time.perf_counter()
    with pytest.raises(DeadlineExceeded, match=r"stopped after 0\.2 s"):
        call_with_deadline(nested_outer_limit_expires, seconds=0.2)
    assert time.perf_counter() - start < 5


def test_a_timer_set_by_someone_else_survives() -> None:
    fired: list[int] = []

    def foreign(signum: int, frame: object) -> None:
        fired.append(signum)

    saved_handler = signal.signal(signal.SIGALRM, foreign)
    saved_timer = signal.setitimer(signal.ITIMER_REAL, 1.0)  # e.g. pytest-timeout's own
    try:
        call_with_deadline(time.sleep, 0.1, seconds=5)
        with pytest.raises(DeadlineExceeded):
            call_with_deadline(time.sleep, HANG_SECONDS, seconds=0.1)
        assert signal.getsignal(signal.SIGALRM) is foreign and not fired
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 0 < remaining < 1.0
        time.sleep(remaining + 0.2)
        assert fired == [signal.SIGALRM]
    finally:
        signal.signal(signal.SIGALRM, saved_handler)
        signal.setitimer(signal.ITIMER_REAL, *saved_timer)


def test_off_main_thread_calls_must_pickle() -> None:
    _, error, _ = on_thread(lambda: call_with_deadline(lambda: 1, seconds=1))
    assert isinstance(error, TypeError) and "must pickle" in str(error)


def test_bad_limit() -> None:
    for bad in (0, -1, float("inf"), float("nan"), True, "1"):
        with pytest.raises(ValueError, match="positive, finite number of seconds"):
            call_with_deadline(pow, 2, 2, seconds=bad)
