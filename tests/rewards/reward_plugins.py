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
