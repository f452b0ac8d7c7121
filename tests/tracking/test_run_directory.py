"""Run directory naming, config.yaml, and refusing to mix a new run into an old one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reasonrl.tracking import RunDirectory, RunDirectoryError


def test_default_name_is_a_timestamp_and_same_second_runs_get_distinct_folders(tmp_path: Path) -> None:
    first = RunDirectory.create(parent=tmp_path / "runs", config_text="a: 1\n")
    second = RunDirectory.create(parent=tmp_path / "runs")
    assert re.fullmatch(r"\d{8}-\d{6}", first.root.name)
    assert first.root != second.root and first.root.is_dir() and second.root.is_dir()
    assert first.config_path.read_text() == "a: 1\n"


def test_paths(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path / "r")
    assert run.metrics_path == tmp_path / "r" / "metrics.jsonl"
    assert run.rollout_path(10) == tmp_path / "r" / "rollouts" / "step_000010.jsonl"
    assert run.summary_path.name == "summary.json"
    assert (run.plots_dir.name, run.tensorboard_dir.name, run.checkpoints_dir.name) == (
        "plots",
        "tensorboard",
        "checkpoints",
    )


def test_existing_run_is_refused_unless_resuming(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path / "r", config_text="old\n")
    run.metrics_path.write_text('{"step":1}\n')
    with pytest.raises(RunDirectoryError, match=r"already holds a run.*--resume.*logging\.run_dir"):
        RunDirectory.create(tmp_path / "r")
    resumed = RunDirectory.create(tmp_path / "r", config_text="new\n", resume=True)
    assert resumed.config_path.read_text() == "new\n"
    assert resumed.metrics_path.read_text() == '{"step":1}\n'
