"""Stopwatch: per-phase accumulation and whole-step time, on a fake clock."""

from __future__ import annotations

import pytest

from reasonrl.tracking import Stopwatch


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_phases_accumulate_until_lap() -> None:
    clock = FakeClock()
    timer = Stopwatch(clock=clock)
    clock.now += 9.0  # setup before the first phase is not part of the first step
    with timer("generate"):
        clock.now += 2.0
    with timer("reward"):
        clock.now += 0.5
    with timer("generate"):
        clock.now += 1.0
    clock.now += 0.25  # outside every phase: counted in time/step only
    assert timer.lap() == {"time/generate": 3.0, "time/reward": 0.5, "time/step": 3.75}
    with timer("update"):
        clock.now += 4.0
    assert timer.lap() == {"time/update": 4.0, "time/step": 4.0}


def test_a_failing_phase_still_counts() -> None:
    clock = FakeClock()
    timer = Stopwatch(clock=clock)
    with pytest.raises(KeyError), timer("reward"):
        clock.now += 1.5
        raise KeyError("boom")
    assert timer.lap()["time/reward"] == 1.5


def test_phase_named_step_is_refused() -> None:
    with pytest.raises(ValueError, match="clash with 'time/step'"), Stopwatch()("step"):
        pass
