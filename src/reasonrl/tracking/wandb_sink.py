"""Weights & Biases, when `logging.wandb` is on (needs `wandb`; a missing package is an error, not a skip).

The W&B run id is kept in the run directory, so a resumed run continues the same W&B run instead of
starting a second one. W&B cannot delete logged history, and it ignores values logged for a step at or
below the last step it has; after a resume the re-run steps are therefore kept as first logged, which is
what a lossless resume reproduces anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from reasonrl.tracking.run_directory import RunDirectory

RUN_ID_FILE = "wandb_run_id.txt"


class WandbSink:
    """Logs each step with `run.log(metrics, step=step)` to a W&B run named after the run directory."""

    def __init__(self, wandb: ModuleType, run: RunDirectory, project: str, config: Mapping[str, Any] | None) -> None:
        id_path = run.root / RUN_ID_FILE
        run_id = id_path.read_text(encoding="utf-8").strip() if id_path.exists() else wandb.util.generate_id()
        self._run = wandb.init(
            project=project,
            name=run.root.name,
            id=run_id,
            resume="allow",
            dir=str(run.root),
            config=dict(config) if config else None,
        )
        id_path.write_text(run_id, encoding="utf-8")

    def log(self, step: int, metrics: Mapping[str, float | int]) -> None:
        self._run.log(dict(metrics), step=step)

    def truncate_after(self, step: int) -> None:
        """Nothing to do: W&B keeps its history and skips re-logged steps (see the module docstring)."""

    def summary(self, summary: Mapping[str, Any]) -> None:
        self._run.summary.update(dict(summary))

    def close(self) -> None:
        self._run.finish()
