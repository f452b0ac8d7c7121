"""What every optional metric sink (TensorBoard, W&B, MLflow) offers, and how a missing one is reported."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Protocol


class MissingPackageError(ImportError):
    """A sink was enabled in the config but its package is not installed."""


class MetricSink(Protocol):
    """A destination for per-step scalars besides `metrics.jsonl`."""

    def log(self, step: int, metrics: Mapping[str, float | int]) -> None:
        """Record the scalars of one step."""

    def truncate_after(self, step: int) -> None:
        """Forget steps after `step` where the backend allows it (resume from a checkpoint at `step`)."""

    def summary(self, summary: Mapping[str, Any]) -> None:
        """Attach the end-of-run summary."""

    def close(self) -> None:
        """Flush and release the backend."""


def require(module: str, config_flag: str) -> ModuleType:
    """Import `module` for an enabled sink, or fail with the two ways out: install it or disable the sink."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingPackageError(
            f"{config_flag} is true but the package {module!r} is not installed ({error}); "
            f"install it with `pip install {module}` (or `pip install 'reasonrl[tracking]'`), "
            f"or set {config_flag}: false"
        ) from error
