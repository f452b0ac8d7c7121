"""The terminal view of a run: a live progress bar on a terminal, one plain line per step elsewhere.

CI logs and `nohup` files cannot render a live bar (they would fill with redraw codes), so when the output
is not a terminal, or the live display is turned off, each step prints one `key=value` line instead:

    step=3/100 reward=0.5125 acc=0.25 len=17.25 kl=0.0012 entropy=1.234 samples/s=45.1 eta=0:01:23

Metrics absent from a step are left out of its line. The ETA is the average step time of this session so
far times the steps left, which is steadier than the recent-rate estimate of a plain progress bar.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from reasonrl.tracking.names import ENTROPY, KL, RESPONSE_LENGTH, REWARD, TRAIN_ACCURACY

# (label on the line, metric name) of the values shown for each step.
PROGRESS_FIELDS: tuple[tuple[str, str], ...] = (
    ("reward", REWARD),
    ("acc", TRAIN_ACCURACY),
    ("len", RESPONSE_LENGTH),
    ("kl", KL),
    ("entropy", ENTROPY),
)


class ProgressDisplay:
    """Shows step/total, the chosen metrics, samples/s and ETA after each step. Use as a context manager.

    live: draw a live bar when the console is a terminal (`logging.progress`); otherwise, or when false,
    print one line per step. samples_per_step: responses per step, for samples/s (0 = not shown); `update`
    can override it per step. start_step: the step a resumed run starts after, so the ETA and samples/s
    count only this session's steps.
    """

    def __init__(
        self,
        total_steps: int,
        *,
        samples_per_step: int = 0,
        start_step: int = 0,
        live: bool = True,
        console: Console | None = None,
        fields: Sequence[tuple[str, str]] = PROGRESS_FIELDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.total_steps = total_steps
        self.samples_per_step = samples_per_step
        self.start_step = start_step
        self.fields = tuple(fields)
        self.console = console if console is not None else Console()
        self._clock = clock
        self._live = live and self.console.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._started: float | None = None
        self._samples = 0

    def __enter__(self) -> ProgressDisplay:
        self._started = self._clock()
        self._samples = 0
        if self._live:
            self._progress = Progress(
                TextColumn("step"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}", markup=False),
                console=self.console,
            )
            self._task = self._progress.add_task("train", total=self.total_steps, completed=self.start_step, stats="")
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def update(self, step: int, metrics: Mapping[str, Any], *, samples: int | None = None) -> None:
        """Show finished step `step` (from 1); `samples` (default samples_per_step) feeds samples/s."""
        if self._started is None:
            raise RuntimeError(
                "ProgressDisplay.update was called outside its context; use "
                "`with ProgressDisplay(total_steps) as progress:` around the training loop"
            )
        self._samples += self.samples_per_step if samples is None else samples
        stats = self._stats(step, metrics, elapsed=self._clock() - self._started)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=step, stats=stats)
        else:
            line = f"step={step}/{self.total_steps} {stats}".rstrip()
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _stats(self, step: int, metrics: Mapping[str, Any], elapsed: float) -> str:
        parts = [f"{label}={_format(metrics[name])}" for label, name in self.fields if name in metrics]
        done = step - self.start_step
        if elapsed > 0 and self._samples > 0:
            parts.append(f"samples/s={self._samples / elapsed:.1f}")
        if done > 0:
            remaining = max(self.total_steps - step, 0) * elapsed / done
            parts.append(f"eta={timedelta(seconds=round(remaining))}")
        return " ".join(parts)


def _format(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Non-finite values print as nan / inf / -inf, which float() parses back.
        return f"{value:.4g}" if math.isfinite(value) else str(float(value))
    return str(value)
