"""PNG plots of a run, drawn from `metrics.jsonl` alone, so they can be redrawn for any finished run.

Drawing uses matplotlib's Agg canvas on a bare `Figure`, never pyplot: no display is needed, and the
caller's own pyplot state (a notebook's backend, open figures) is left untouched. A plot whose metrics were
never logged is skipped; a metric missing at some steps (e.g. eval accuracy every N steps) is drawn at the
steps that have it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonrl.tracking.metrics_file import STEP_KEY, read_metrics
from reasonrl.tracking.names import STEP_TIME, TIME_PREFIX
from reasonrl.tracking.run_directory import RunDirectory

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Rows = Sequence[dict[str, Any]]
# Markers make sparse series (periodic evaluations, short runs) visible; on long series they are clutter.
_MARKER_MAX_POINTS = 50


@dataclass(frozen=True)
class _LinePlot:
    """One PNG with a line per metric whose name `selects` accepts."""

    filename: str
    title: str
    ylabel: str
    selects: Callable[[str], bool]


def _has_accuracy_segment(name: str) -> bool:
    return any(segment.startswith("accuracy") for segment in name.split("/"))


LINE_PLOTS = (
    _LinePlot("reward.png", "Reward", "reward", lambda name: name.startswith("reward/")),
    _LinePlot("accuracy.png", "Accuracy", "accuracy", _has_accuracy_segment),
    _LinePlot("response_length.png", "Response length", "tokens", lambda name: name.startswith("response_length/")),
    _LinePlot("kl.png", "KL divergence", "KL", lambda name: name.startswith("kl/")),
    _LinePlot("entropy.png", "Entropy", "nats per token", lambda name: name.startswith("entropy/")),
)
TIME_PLOT = "time.png"


def plot_run(run: RunDirectory | str | Path) -> list[Path]:
    """Draw every plot the run's metrics allow into `plots/`; returns the files written."""
    run = run if isinstance(run, RunDirectory) else RunDirectory(Path(run))
    if not run.metrics_path.exists():
        raise FileNotFoundError(
            f"no {run.metrics_path.name} in {run.root}; plot_run needs a run directory written by a "
            "reasonrl run (check the path)"
        )
    rows = read_metrics(run.metrics_path)
    names = _metric_names(rows)
    written = []
    for spec in LINE_PLOTS:
        selected = [name for name in names if spec.selects(name) and _series(rows, name)[0]]
        if selected:
            written.append(_save(_line_figure(rows, selected, spec), run.plots_dir / spec.filename))
    phases = [name for name in names if name.startswith(TIME_PREFIX) and name != STEP_TIME]
    if phases or STEP_TIME in names:
        written.append(_save(_time_figure(rows, phases), run.plots_dir / TIME_PLOT))
    return written


def _metric_names(rows: Rows) -> list[str]:
    """Every metric name in order of first appearance, which keeps the pipeline's phase order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update((name, None) for name in row if name != STEP_KEY)
    return list(seen)


def _value(row: dict[str, Any], name: str) -> float | None:
    value = row.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _series(rows: Rows, name: str) -> tuple[list[int], list[float]]:
    """Steps and values where `name` has a finite value (non-finite ones are stored as null)."""
    points = [(row[STEP_KEY], v) for row in rows if (v := _value(row, name)) is not None]
    return [step for step, _ in points], [value for _, value in points]


def _new_axes(title: str, ylabel: str) -> tuple[Figure, Any]:
    # Imported here: matplotlib takes about a second to import, which every `reasonrl` command would pay.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def _line_figure(rows: Rows, names: list[str], spec: _LinePlot) -> Figure:
    figure, axes = _new_axes(spec.title, spec.ylabel)
    for name in names:
        steps, values = _series(rows, name)
        marker = "o" if len(steps) <= _MARKER_MAX_POINTS else None
        axes.plot(steps, values, label=name, marker=marker, markersize=3)
    _legend(axes)
    return figure


def _time_figure(rows: Rows, phases: list[str]) -> Figure:
    """Seconds per step split by phase, stacked; `time/step` on top shows the time no phase accounts for."""
    figure, axes = _new_axes("Time per step", "seconds")
    timed = [row for row in rows if any(_value(row, name) is not None for name in phases)]
    if timed:
        steps = [row[STEP_KEY] for row in timed]
        stacks = [[_value(row, name) or 0.0 for row in timed] for name in phases]
        axes.stackplot(steps, *stacks, labels=phases, alpha=0.8)
    total_steps, totals = _series(rows, STEP_TIME)
    if total_steps:
        axes.plot(total_steps, totals, color="black", linewidth=1, label=STEP_TIME)
    _legend(axes)
    return figure


def _legend(axes: Any) -> None:
    """Legend beside the axes, where it never hides a line or the top of the stack."""
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
