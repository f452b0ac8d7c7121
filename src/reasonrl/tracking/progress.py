"""The terminal view of a run: a live progress bar on a terminal, a plain line now and then elsewhere.

CI logs and `nohup` files cannot render a live bar (they would fill with redraw codes), so when the output
is not a terminal, or the live display is turned off, a step prints one `key=value` line instead:

    step=3/100 reward=0.5125 acc=0.25 len=17.25 kl=0.0012 entropy=1.234 samples/s=45.1 eta=0:01:23

A line per step would bury a log under hundreds of lines, so only the first step of a session, every
`every`-th step (`logging.progress_every_steps`; by default about `PLAIN_LINES` lines a run) and the last
step print. Metrics absent from a step are left out of its line. The ETA is the average step time of this
session so far times the steps left, which is steadier than the recent-rate estimate of a plain progress bar.

`WorkProgress` is the same for counted work outside training (the problems `reasonrl eval` generates for):
a bar on a terminal, else a line every `percent`% of the work with the elapsed time and an ETA.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from reasonrl.tracking.names import ENTROPY, KL, RESPONSE_LENGTH, REWARD, TRAIN_ACCURACY

# (label on the line, metric name) of the values shown for each step.
PROGRESS_FIELDS: tuple[tuple[str, str], ...] = (
    ("reward", REWARD),
    ("acc", TRAIN_ACCURACY),
    ("len", RESPONSE_LENGTH),
    ("kl", KL),
    ("entropy", ENTROPY),
)

PLAIN_LINES = 20
"""About how many step lines a run prints off a terminal when `logging.progress_every_steps` is not set."""


def plain_line_every(total_steps: int, every: int | None = None) -> int:
    """Steps between plain progress lines: `every` when given, else enough for about `PLAIN_LINES` lines."""
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(
                f"progress lines: every must be a whole number of steps >= 1 (or None = auto), got {every!r}"
            )
        return every
    return max(1, math.ceil(total_steps / PLAIN_LINES))


class _LiveBar:
    """What both displays share: a rich bar (on a terminal) stopped when their `with` block ends."""

    _progress: Progress | None = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class ProgressDisplay(_LiveBar):
    """Shows step/total, the chosen metrics, samples/s and ETA after each step. Use as a context manager.

    live: draw a live bar when the console is a terminal (`logging.progress`); otherwise, or when false,
    print a line for the session's first step, every `every`-th step (None = about `PLAIN_LINES` lines a
    run) and the last one. samples_per_step: responses per step, for samples/s (0 = not shown); `update`
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
        every: int | None = None,
    ) -> None:
        self.total_steps = total_steps
        self.every = plain_line_every(total_steps, every)
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
        elif self._prints(step):
            line = f"step={step}/{self.total_steps} {stats}".rstrip()
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _prints(self, step: int) -> bool:
        """Whether plain step `step` gets a line: the session's first (it is alive), every `every`-th, the last."""
        return step == self.start_step + 1 or step % self.every == 0 or step >= self.total_steps

    def _stats(self, step: int, metrics: Mapping[str, Any], elapsed: float) -> str:
        parts = [f"{label}={_format(metrics[name])}" for label, name in self.fields if name in metrics]
        done = step - self.start_step
        if elapsed > 0 and self._samples > 0:
            parts.append(f"samples/s={self._samples / elapsed:.1f}")
        if done > 0:
            parts.append(f"eta={eta(elapsed, done, self.total_steps - step)}")
        return " ".join(parts)


def eta(elapsed: float, done: int, left: int) -> timedelta:
    """Time left at the average pace so far: `elapsed / done` per unit, times the `left` units (none below 0)."""
    return timedelta(seconds=round(max(left, 0) * elapsed / done))


def _format(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Non-finite values print as nan / inf / -inf, which float() parses back.
        return f"{value:.4g}" if math.isfinite(value) else str(float(value))
    return str(value)


class WorkProgress(_LiveBar):
    """Progress through `total` units of work (e.g. problems): a transient bar on a terminal, else plain lines.

    Off a terminal a line is printed when the work starts and each time `advance` crosses another `percent`%
    of it, with the elapsed time and an ETA (elapsed / done x left), so a long job in a log shows it is alive:

        generating: 40/200 problems (20%) elapsed=0:00:10 eta=0:00:40

    Use as a context manager and call `advance(count)` as units finish.
    """

    def __init__(
        self,
        label: str,
        total: int,
        unit: str,
        *,
        console: Console | None = None,
        percent: float = 10.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not 0 < percent <= 100:
            raise ValueError(f"WorkProgress: percent must be in (0, 100], got {percent!r}")
        self.label, self.total, self.unit, self.percent = label, total, unit, percent
        self.console = console if console is not None else Console()
        self._clock = clock
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._started = 0.0
        self._done = 0
        self._next_mark = 0.0  # share of the work (in %) at which the next plain line is due

    def __enter__(self) -> WorkProgress:
        self._started, self._done = self._clock(), 0
        if self.console.is_terminal:
            columns = (TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TextColumn(self.unit))
            self._progress = Progress(*columns, TimeRemainingColumn(), console=self.console, transient=True)
            self._task = self._progress.add_task(self.label, total=self.total)
            self._progress.start()
        else:
            self._line()
            self._next_mark = self.percent if self.total > 0 else math.inf
        return self

    def advance(self, count: int) -> None:
        """Count `count` more finished units; off a terminal, print a line if another `percent`% is done."""
        self._done += count
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, count)
            return
        share = self._share()
        if share >= self._next_mark:
            self._line()
            # The next multiple of `percent` above this share, the end (100%) included, then nothing more.
            self._next_mark = (
                min(100.0, (math.floor(share / self.percent) + 1) * self.percent) if share < 100 else math.inf
            )

    def _share(self) -> float:
        return 100.0 * self._done / self.total if self.total > 0 else 100.0

    def _line(self) -> None:
        line = f"{self.label}: {self._done}/{self.total} {self.unit} ({self._share():.0f}%)"
        if self._done > 0:
            elapsed = self._clock() - self._started
            line += (
                f" elapsed={timedelta(seconds=round(elapsed))} eta={eta(elapsed, self._done, self.total - self._done)}"
            )
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
