"""Where reasonrl keeps files between runs (built-in models, the task catalogue)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$REASONRL_CACHE, else ~/.cache/reasonrl: tests point it at a temporary folder."""
    return Path(os.environ.get("REASONRL_CACHE", Path.home() / ".cache" / "reasonrl"))
