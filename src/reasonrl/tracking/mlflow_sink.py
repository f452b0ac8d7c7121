"""MLflow, when `logging.mlflow` is on (needs `mlflow`; a missing package is an error, not a skip).

Runs go to MLflow's own tracking location (`MLFLOW_TRACKING_URI`, else its local default), in an
experiment named after `logging.project`. The MLflow run id is kept in the run directory, so a resumed
run continues the same MLflow run. MLflow keeps every value logged for a step, so after a resume the
re-run steps appear twice there; `metrics.jsonl` holds each step once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from reasonrl.tracking.run_directory import RunDirectory

RUN_ID_FILE = "mlflow_run_id.txt"
# MLflow rejects metric names outside this set (e.g. `eval/pass@8`); such characters become `_` there only.
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_\-. :/]")


def mlflow_name(name: str) -> str:
    """`name` with the characters MLflow refuses replaced by `_`."""
    return _NOT_ALLOWED.sub("_", name)


class MlflowSink:
    """Logs each step with `log_metrics(metrics, step=step)` and the config as an artifact."""

    def __init__(self, mlflow: ModuleType, run: RunDirectory, project: str) -> None:
        self._mlflow = mlflow
        id_path = run.root / RUN_ID_FILE
        mlflow.set_experiment(project)
        if id_path.exists():
            active = mlflow.start_run(run_id=id_path.read_text(encoding="utf-8").strip())
        else:
            active = mlflow.start_run(run_name=run.root.name)
            id_path.write_text(active.info.run_id, encoding="utf-8")
        if run.config_path.exists():
            mlflow.log_artifact(str(run.config_path))

    def log(self, step: int, metrics: Mapping[str, float | int]) -> None:
        self._mlflow.log_metrics({mlflow_name(k): v for k, v in metrics.items()}, step=step)

    def truncate_after(self, step: int) -> None:
        """Nothing to do: MLflow cannot delete logged values (see the module docstring)."""

    def summary(self, summary: Mapping[str, Any]) -> None:
        self._mlflow.log_dict(dict(summary), "summary.json")

    def close(self) -> None:
        self._mlflow.end_run()
