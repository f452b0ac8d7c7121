"""Progress display: one parseable line per step off a terminal, a live bar on one; ETA from a fake clock."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from reasonrl.tracking import ProgressDisplay

LINE = re.compile(r"step=(\d+)/(\d+)((?: [\w/]+=\S+)*)")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def parse(line: str) -> dict[str, str]:
    match = LINE.fullmatch(line)
    assert match, line
    fields = dict(part.split("=", 1) for part in match.group(3).split())
    return {"step": match.group(1), "total": match.group(2), **fields}


def test_plain_lines_one_per_step() -> None:
    out = io.StringIO()
    clock = FakeClock()
    metrics = {
        "reward/mean": 0.5125,
        "accuracy/train": 0.25,
        "response_length/mean": 17.25,
        "kl/mean": 0.00123,
        "entropy/mean": float("nan"),
    }
    with ProgressDisplay(10, samples_per_step=64, console=Console(file=out), clock=clock) as progress:
        for step in (1, 2):
            clock.now += 2.0
            progress.update(step, metrics if step == 1 else {"reward/mean": 0.75})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = parse(lines[0]), parse(lines[1])
    assert first == {
        "step": "1",
        "total": "10",
        "reward": "0.5125",
        "acc": "0.25",
        "len": "17.25",
        "kl": "0.00123",
        "entropy": "nan",
        "samples/s": "32.0",
        "eta": "0:00:18",
    }
    assert second == {"step": "2", "total": "10", "reward": "0.75", "samples/s": "32.0", "eta": "0:00:16"}


def test_resumed_run_counts_only_this_sessions_steps() -> None:
    out = io.StringIO()
    clock = FakeClock()
    with ProgressDisplay(100, start_step=90, console=Console(file=out), clock=clock) as progress:
        clock.now += 3.0
        progress.update(91, {}, samples=30)
    expected = {"step": "91", "total": "100", "samples/s": "10.0", "eta": "0:00:27"}
    assert parse(out.getvalue().strip()) == expected


def test_disabled_live_display_prints_lines_even_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None)
    with ProgressDisplay(3, live=False, console=console) as progress:
        progress.update(1, {"reward/mean": 1.0})
    assert parse(out.getvalue().strip())["reward"] == "1"


def test_live_display_on_a_terminal_shows_the_step_and_metrics() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=150, color_system=None)
    with ProgressDisplay(4, console=console) as progress:
        progress.update(4, {"reward/mean": 0.875})
    rendered = out.getvalue()
    assert "4/4" in rendered and "reward=0.875" in rendered


def test_update_outside_the_context_says_how_to_use_it() -> None:
    with pytest.raises(RuntimeError, match="with ProgressDisplay"):
        ProgressDisplay(3, console=Console(file=io.StringIO())).update(1, {})
