"""`Tracker`: the one object a training loop logs through; it fans each step out to every enabled sink.

`metrics.jsonl` is always written and is the run's record; TensorBoard, W&B and MLflow are copies for
people to look at. The tracker records and shows, and never acts on what it sees (no early stopping,
no alerts): those are the pipeline's decisions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from reasonrl.config.schema import LoggingConfig
from reasonrl.tracking.metrics_file import MetricsFile
from reasonrl.tracking.mlflow_sink import MlflowSink
from reasonrl.tracking.plots import plot_run
from reasonrl.tracking.rollouts import write_rollouts
from reasonrl.tracking.run_directory import RunDirectory
from reasonrl.tracking.sink import MetricSink, require
from reasonrl.tracking.summary import write_summary
from reasonrl.tracking.tensorboard_sink import open_tensorboard
from reasonrl.tracking.wandb_sink import WandbSink

logger = logging.getLogger(__name__)


class Tracker:
    """Per-step metrics, rollout dumps, the summary and the end-of-run plots of one run directory.

    Keyword defaults mirror `LoggingConfig`; `from_config` is the usual way in. Use as a context manager
    (or call `close`) so every sink is flushed and the plots are drawn, also when the loop raises.
    """

    def __init__(
        self,
        run: RunDirectory | str | Path,
        *,
        tensorboard: bool = True,
        wandb: bool = False,
        mlflow: bool = False,
        project: str = "reasonrl",
        rollout_dump_every: int = 10,
        plots: bool = True,
    ) -> None:
        self.run = run if isinstance(run, RunDirectory) else RunDirectory(Path(run))
        self.rollout_dump_every = rollout_dump_every
        self.plots = plots
        # Import every enabled remote backend before starting any, so a missing package fails the run at
        # once instead of after a W&B run has been opened.
        wandb_module = require("wandb", "logging.wandb") if wandb else None
        mlflow_module = require("mlflow", "logging.mlflow") if mlflow else None
        self._metrics = MetricsFile(self.run.metrics_path)
        self._sinks: list[MetricSink] = []
        if tensorboard and (board := open_tensorboard(self.run.tensorboard_dir)) is not None:
            self._sinks.append(board)
        if wandb_module is not None:
            self._sinks.append(WandbSink(wandb_module, self.run, project, self._config_mapping()))
        if mlflow_module is not None:
            self._sinks.append(MlflowSink(mlflow_module, self.run, project))

    @classmethod
    def from_config(cls, config: LoggingConfig, run: RunDirectory) -> Tracker:
        """A tracker with the sinks and cadences that `logging` asks for."""
        return cls(
            run,
            tensorboard=config.tensorboard,
            wandb=config.wandb,
            mlflow=config.mlflow,
            project=config.project,
            rollout_dump_every=config.rollout_dump_every,
            plots=config.plots,
        )

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Record the scalars of `step` everywhere. Values may be Python, numpy or 0-d tensor numbers."""
        scalars = {name: _scalar(name, value) for name, value in metrics.items()}
        self._metrics.write(step, scalars)
        for sink in self._sinks:
            sink.log(step, scalars)

    def truncate_after(self, step: int) -> None:
        """Drop what was recorded after `step` (resuming from a checkpoint taken at `step`).

        `metrics.jsonl` and the rollout dumps lose the later steps, TensorBoard hides them; W&B and MLflow
        cannot delete history (see their modules).
        """
        self._metrics.truncate_after(step)
        for later in (s for s in self.run.rollout_steps() if s > step):
            self.run.rollout_path(later).unlink()
        for sink in self._sinks:
            sink.truncate_after(step)

    def wants_rollouts(self, step: int) -> bool:
        """Whether `logging.rollout_dump_every` asks for a dump at `step`, so records are only built then."""
        return self.rollout_dump_every > 0 and step % self.rollout_dump_every == 0

    def dump_rollouts(self, step: int, records: Sequence[Mapping[str, Any]]) -> Path:
        """Write `records` (one JSON-able dict per response) to `rollouts/step_{step:06d}.jsonl`."""
        return write_rollouts(self.run.rollout_path(step), records)

    def write_summary(self, summary: Mapping[str, Any]) -> Path:
        """Write `summary.json` and attach the summary to the sinks that keep one."""
        path = write_summary(self.run, summary)
        for sink in self._sinks:
            sink.summary(summary)
        return path

    def close(self) -> None:
        """Flush and close every sink, then draw the plots if enabled (also after a failed run)."""
        try:
            self._metrics.close()
            for sink in self._sinks:
                sink.close()
        finally:
            if self.plots:
                self._draw_plots()

    def _draw_plots(self) -> None:
        # Plots are a view of metrics.jsonl, which is already complete on disk: a plotting failure must not
        # turn a finished run into a failed one, nor hide the exception that ended a failed one.
        try:
            plot_run(self.run)
        except Exception:
            logger.warning(
                "could not draw the plots of %s; the metrics are intact in %s. Retry with "
                "reasonrl.tracking.plot_run(%r).",
                self.run.root,
                self.run.metrics_path.name,
                str(self.run.root),
                exc_info=True,
            )

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _config_mapping(self) -> dict[str, Any] | None:
        """The run's `config.yaml` as a mapping, for backends that show the config beside the metrics."""
        if not self.run.config_path.exists():
            return None
        loaded = yaml.safe_load(self.run.config_path.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else None


def _scalar(name: str, value: Any) -> float | int:
    """A plain Python number, so every sink receives the same value; anything else is a caller bug."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if hasattr(value, "item"):
        try:
            item = value.item()
        except (ValueError, RuntimeError) as error:
            raise TypeError(
                f"metric {name!r} is an array with more than one element; log a single number (e.g. its .mean().item())"
            ) from error
        if isinstance(item, bool | int | float):
            return int(item) if isinstance(item, bool) else item
    raise TypeError(
        f"metric {name!r} is {value!r} of type {type(value).__name__}; metrics must be numbers "
        "(put text and lists in a rollout dump or the summary instead)"
    )
