"""Progress display: parseable lines (about 20 a run) off a terminal, a live bar on one; ETA from a fake clock."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from reasonrl.tracking import ProgressDisplay
from reasonrl.tracking.progress import WorkProgress

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


def test_a_log_gets_about_twenty_lines_a_run_each_with_an_eta() -> None:
    out = io.StringIO()
    clock = FakeClock()
    console = Console(file=out, force_terminal=False)
    with ProgressDisplay(100, samples_per_step=16, console=console, clock=clock) as progress:
        for step in range(1, 101):
            clock.now += 1.0
            progress.update(step, {"reward/mean": 0.5})
    lines = [parse(line) for line in out.getvalue().splitlines()]
    assert [int(line["step"]) for line in lines] == [1, *range(5, 101, 5)]  # the first step, then every 5th
    assert [line["eta"] for line in lines[:3]] == ["0:01:39", "0:01:35", "0:01:30"]
    assert lines[-1]["eta"] == "0:00:00"


def test_progress_every_steps_sets_the_spacing_and_the_last_step_always_prints() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None)  # progress: false on a terminal
    with ProgressDisplay(95, live=False, console=console, every=10, clock=FakeClock()) as progress:
        for step in range(1, 96):
            progress.update(step, {})
    assert [int(parse(line)["step"]) for line in out.getvalue().splitlines()] == [1, *range(10, 91, 10), 95]


def test_a_resumed_run_prints_its_first_step_then_the_usual_ones() -> None:
    out = io.StringIO()
    with ProgressDisplay(600, start_step=443, console=Console(file=out), clock=FakeClock()) as progress:
        for step in range(444, 601):
            progress.update(step, {})
    steps = [int(parse(line)["step"]) for line in out.getvalue().splitlines()]
    assert steps == [444, *range(450, 601, 30)]


@pytest.mark.parametrize("every", [0, -3, 2.5])
def test_a_bad_spacing_says_what_is_allowed(every: object) -> None:
    with pytest.raises(ValueError, match="every must be a whole number of steps >= 1"):
        ProgressDisplay(10, every=every)  # type: ignore[arg-type]


def test_work_progress_in_a_log_prints_a_line_every_ten_percent_with_an_eta() -> None:
    out = io.StringIO()
    clock = FakeClock()
    console = Console(file=out, force_terminal=False)
    with WorkProgress("generating", 200, "problems", console=console, clock=clock) as progress:
        for _ in range(200):
            clock.now += 0.5
            progress.advance(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11
    assert lines[0] == "generating: 0/200 problems (0%)"
    assert lines[1] == "generating: 20/200 problems (10%) elapsed=0:00:10 eta=0:01:30"
    assert lines[-1] == "generating: 200/200 problems (100%) elapsed=0:01:40 eta=0:00:00"


def test_work_progress_in_chunks_prints_once_per_share_crossed_and_always_the_end() -> None:
    out = io.StringIO()
    with WorkProgress("generating", 70, "problems", console=Console(file=out), percent=25) as progress:
        for size in (30, 30, 10, 0):  # 43%, 86%, 100%, and a late empty chunk that adds nothing
            progress.advance(size)
    shares = [line.split("(")[1].split(")")[0] for line in out.getvalue().splitlines()]
    assert shares == ["0%", "43%", "86%", "100%"]


def test_work_progress_on_a_terminal_draws_a_bar_and_no_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    with WorkProgress("generating", 8, "problems", console=console) as progress:
        progress.advance(8)
    assert "generating: " not in out.getvalue()
    assert "8/8" in out.getvalue()


def test_the_training_loop_takes_the_spacing_from_the_logging_config() -> None:
    from types import SimpleNamespace

    from reasonrl.config import load_config
    from reasonrl.pipelines.step import progress_display

    config = load_config(None, ["train.steps=600", "logging.progress=false", "logging.progress_every_steps=50"])
    out = io.StringIO()
    with progress_display(SimpleNamespace(config=config, step=0), Console(file=out)) as progress:  # type: ignore[arg-type]
        for step in range(1, 601):
            progress.update(step, {})
    assert len(out.getvalue().splitlines()) == 13  # step 1, then every 50th
    default = load_config(None, ["train.steps=600"])
    assert progress_display(SimpleNamespace(config=default, step=0), Console(file=out)).every == 30  # type: ignore[arg-type]
