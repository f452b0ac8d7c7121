"""Run directory, metric sinks, rollout dumps, plots, progress display and summary of a training run.

`tracking` records and shows what a run does; it decides nothing. The pieces a training loop needs:

    run = RunDirectory.create(cfg.logging.run_dir, config_text=dump_config(cfg))
    timer = Stopwatch()
    tracker = Tracker.from_config(cfg.logging, run)
    with tracker, ProgressDisplay(steps, samples_per_step=batch, live=cfg.logging.progress) as progress:
        for step in range(1, steps + 1):
            with timer("generate"):
                ...
            metrics = {...} | timer.lap()
            tracker.log(step, metrics)
            progress.update(step, metrics)
        tracker.write_summary(summary)
"""

from reasonrl.tracking.encoding import json_line, to_jsonable
from reasonrl.tracking.metrics_file import MetricsFile, read_metrics
from reasonrl.tracking.plots import plot_run
from reasonrl.tracking.progress import PROGRESS_FIELDS, ProgressDisplay
from reasonrl.tracking.rollouts import read_rollouts, write_rollouts
from reasonrl.tracking.run_directory import RunDirectory, RunDirectoryError
from reasonrl.tracking.sink import MetricSink, MissingPackageError
from reasonrl.tracking.stopwatch import Stopwatch
from reasonrl.tracking.summary import summary_table, write_summary
from reasonrl.tracking.tracker import Tracker

__all__ = [
    "PROGRESS_FIELDS",
    "MetricSink",
    "MetricsFile",
    "MissingPackageError",
    "ProgressDisplay",
    "RunDirectory",
    "RunDirectoryError",
    "Stopwatch",
    "Tracker",
    "json_line",
    "plot_run",
    "read_metrics",
    "read_rollouts",
    "summary_table",
    "to_jsonable",
    "write_rollouts",
    "write_summary",
]
