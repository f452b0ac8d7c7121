"""metrics.jsonl: exact content, flushing, truncation on resume, non-finite values as null."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from reasonrl.tracking import MetricsFile, Tracker, read_metrics


def test_lines_are_exact_and_flushed_each_step(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    metrics = MetricsFile(path)
    metrics.write(1, {"reward/mean": 0.5, "time/generate": 1.25})
    metrics.write(2, {"reward/mean": 0.75, "accuracy/train": 1})
    # Readable before close: a killed run keeps every finished step.
    assert path.read_text() == (
        '{"step":1,"reward/mean":0.5,"time/generate":1.25}\n{"step":2,"reward/mean":0.75,"accuracy/train":1}\n'
    )
    metrics.close()


def test_non_finite_values_are_written_as_null(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    metrics = MetricsFile(path)
    metrics.write(1, {"loss": math.nan, "kl/mean": math.inf, "x": -math.inf, "ok": 2.0})
    metrics.close()
    assert path.read_text() == '{"step":1,"loss":null,"kl/mean":null,"x":null,"ok":2.0}\n'
    assert read_metrics(path) == [{"step": 1, "loss": None, "kl/mean": None, "x": None, "ok": 2.0}]


def test_truncate_after_drops_later_steps_and_keeps_appending(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    metrics = MetricsFile(path)
    for step in range(1, 6):
        metrics.write(step, {"v": step})
    metrics.truncate_after(3)
    metrics.write(4, {"v": 40})
    metrics.close()
    assert [(row["step"], row["v"]) for row in read_metrics(path)] == [(1, 1), (2, 2), (3, 3), (4, 40)]
    assert not path.with_name("metrics.jsonl.tmp").exists()


def test_half_written_last_line_is_dropped_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step":1,"v":1}\n{"step":2,"v"')
    assert read_metrics(path) == [{"step": 1, "v": 1}]
    metrics = MetricsFile(path)
    metrics.write(2, {"v": 2})
    metrics.close()
    assert path.read_text() == '{"step":1,"v":1}\n{"step":2,"v":2}\n'


def test_damaged_line_in_the_middle_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step":1}\nnot json\n{"step":3}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl:2 is not valid JSON"):
        read_metrics(path)


def test_step_is_a_reserved_metric_name(tmp_path: Path) -> None:
    metrics = MetricsFile(tmp_path / "metrics.jsonl")
    with pytest.raises(ValueError, match="reserved for the step number"):
        metrics.write(1, {"step": 3})
    metrics.close()


def test_tracker_accepts_numpy_and_tensor_scalars_and_rejects_text(tmp_path: Path) -> None:
    with Tracker(tmp_path, tensorboard=False, plots=False) as tracker:
        tracker.log(1, {"a": np.float32(0.5), "b": torch.tensor(2), "c": True, "d": np.int64(7)})
        with pytest.raises(TypeError, match="metric 'e' is 'high'"):
            tracker.log(2, {"e": "high"})
        with pytest.raises(TypeError, match="more than one element"):
            tracker.log(2, {"f": torch.ones(3)})
    line = (tmp_path / "metrics.jsonl").read_text()
    assert json.loads(line) == {"step": 1, "a": 0.5, "b": 2, "c": 1, "d": 7}
