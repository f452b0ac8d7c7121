"""A reward module that kills any worker process importing it (but not the test process that checks it)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping
from typing import Any

if multiprocessing.parent_process() is not None:
    os._exit(7)


def reward(response: Any, answer: Any, meta: Mapping[str, Any] | None = None) -> float:
    """Never reached in a worker."""
    return 1.0
