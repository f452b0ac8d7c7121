"""Reward functions that misbehave on request, loaded by the pool tests as `reward_plugins.py:unruly`.

They are real user-style reward plugins (a file path and a function name), so the tests exercise the same
loading path a user's own reward takes, inside real worker processes.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
UNRULY = f"{HERE}:unruly"
WEIGHTED = f"{HERE}:weighted"


def unruly(response: Any, answer: Any, meta: Mapping[str, Any] | None = None) -> float:
    """1.0 if `response == answer`, except for the responses that ask for trouble by name."""
    if response == "raise":
        raise ValueError("boom from the reward")
    if response == "hang":
        time.sleep(3600)
    if response == "block":
        # A hang no signal can interrupt, like C code that never returns to the interpreter.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)
    if response == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if response == "exit":
        os._exit(3)
    if response == "nan":
        return float("nan")
    return 1.0 if response == answer else 0.0


def weighted(response: Any, answer: Any, meta: Mapping[str, Any] | None = None, *, scale: float = 1.0) -> float:
    """`scale` times the length of the response, to check that options reach a user function."""
    return scale * len(str(response))


def unjudgeable(response: Any, answer: Any, meta: Mapping[str, Any] | None = None) -> float:
    """1.0 if `response == answer`; raises `RewardUnavailable` (no verdict: a sandbox that did not start) for
    responses starting with "nojudge"."""
    from reasonrl.rewards import RewardUnavailable

    if str(response).startswith("nojudge"):
        raise RewardUnavailable(f"sandbox did not start for {response!r}")
    return float(response == answer)


def slow(response: Any, answer: Any, meta: Mapping[str, Any] | None = None, *, seconds: float = 0.0) -> float:
    """1.0 for a response of even length, after `seconds` of wall time: a reward as slow as running code."""
    time.sleep(seconds)
    return float(len(str(response)) % 2 == 0)


_seen: set[str] = set()


def flaky(response: Any, answer: Any, meta: Mapping[str, Any] | None = None) -> float:
    """1.0 if `response == answer`; the first time it sees a response starting with "flaky" it cannot judge
    it (`RewardUnavailable`: a sandbox that failed to start once). Its memory is per process."""
    from reasonrl.rewards import RewardUnavailable

    if str(response).startswith("flaky") and response not in _seen:
        _seen.add(response)
        raise RewardUnavailable("sandbox did not start this time")
    return float(response == answer)
