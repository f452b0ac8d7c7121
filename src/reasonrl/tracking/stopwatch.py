"""`Stopwatch`: seconds per named phase of a step, for the `time/*` split in the metrics.

    timer = Stopwatch()
    for step in ...:
        with timer("generate"):
            ...
        with timer("update"):
            ...
        tracker.log(step, {**metrics, **timer.lap()})   # time/generate, time/update, time/step

`time/step` is the wall time since the previous lap (for the first lap, since the first phase began, so
setup between constructing the stopwatch and the loop is not counted), which lets the plot show how much
of a step no phase covers. Phases are meant to be disjoint; a phase entered several times in a step adds
up. The clock is injectable so tests need no sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from reasonrl.tracking.names import STEP_TIME, TIME_PREFIX


class Stopwatch:
    """Accumulates seconds per phase until `lap`; safe to time phases from several threads."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._totals: dict[str, float] = {}
        self._lap_start: float | None = None

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        """Time the body as `phase`; the time counts also when the body raises."""
        if TIME_PREFIX + phase == STEP_TIME:
            raise ValueError(
                f"phase name {phase!r} would clash with {STEP_TIME!r}, the whole-step time that lap() "
                "reports; name the phase after what it does (e.g. 'update')"
            )
        start = self._clock()
        if self._lap_start is None:
            self._lap_start = start
        try:
            yield
        finally:
            elapsed = self._clock() - start
            with self._lock:
                self._totals[phase] = self._totals.get(phase, 0.0) + elapsed

    def lap(self) -> dict[str, float]:
        """`{"time/<phase>": seconds, ..., "time/step": seconds}` since the last lap, then start anew."""
        now = self._clock()
        with self._lock:
            split = {TIME_PREFIX + phase: seconds for phase, seconds in self._totals.items()}
            self._totals = {}
        # A lap before any phase ever ran has timed nothing: it reports a zero-second step.
        split[STEP_TIME] = 0.0 if self._lap_start is None else now - self._lap_start
        self._lap_start = now
        return split
