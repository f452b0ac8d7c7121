"""Child processes for scoring: how they start and what they see of the parent's import path.

Plain `fork` is unsafe here: the trainer holding the pool may run torch's thread pools, and a forked child
inherits their locks in whatever state they were. `forkserver` forks from a clean single-threaded server
instead, and the server imports the math verifier once, so each new worker starts in milliseconds rather
than paying math-verify's and sympy's second of imports again. Where forkserver does not exist (Windows,
macOS without it) children are spawned.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing.context import BaseContext

# Imported once by the fork server, so every scoring child forked from it has them loaded already.
_PRELOAD = ["reasonrl.rewards.worker", "reasonrl.rewards.math"]


def scoring_context() -> BaseContext:
    """The multiprocessing context for reward workers and deadline helpers."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # Only takes effect if the fork server has not started yet; afterwards it is a no-op.
        context.set_forkserver_preload(_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def import_path() -> list[str]:
    """The parent's `sys.path` with relative entries made absolute, for a child to adopt.

    A fork server keeps the import path of the moment it started, and a user's reward module next to their
    script is only importable through the script's directory; children take the current path instead.
    """
    return [os.path.abspath(entry) for entry in sys.path]


def adopt_import_path(path: list[str]) -> None:
    """Make this child's `sys.path` the parent's (see `import_path`)."""
    sys.path[:] = path
