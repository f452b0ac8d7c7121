"""Plots from metrics.jsonl: real PNG files, only for the metrics that exist, redrawable after the fact."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest

from reasonrl.tracking import MetricsFile, Tracker, plot_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100


def write_run(root: Path) -> None:
    metrics = MetricsFile(root / "metrics.jsonl")
    for step in range(1, 9):
        row = {
            "reward/mean": step / 10,
            "accuracy/train": step / 20,
            "response_length/mean": 10.0 + step,
            "response_length/max": 20 + step,
            "time/generate": 1.0,
            "time/update": 0.5,
            "time/step": 1.75,
            "loss/policy": float("nan"),
        }
        if step % 4 == 0:
            row["accuracy/eval"] = step / 16
        metrics.write(step, row)
    metrics.close()


def test_plot_run_on_an_existing_run_directory(tmp_path: Path) -> None:
    write_run(tmp_path)
    written = plot_run(tmp_path)
    names = sorted(path.name for path in written)
    # No kl/* or entropy/* were logged, so those plots are skipped.
    assert names == ["accuracy.png", "response_length.png", "reward.png", "time.png"]
    for path in written:
        assert path.parent == tmp_path / "plots"
        assert_png(path)


def test_tracker_draws_plots_on_close(tmp_path: Path) -> None:
    with Tracker(tmp_path, tensorboard=False) as tracker:
        tracker.log(1, {"kl/mean": 0.1, "entropy/mean": 2.0})
        tracker.log(2, {"kl/mean": float("inf"), "entropy/mean": 1.5})
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["entropy.png", "kl.png"]
    assert_png(tmp_path / "plots" / "kl.png")


def test_no_metrics_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no metrics\.jsonl in .*run directory"):
        plot_run(tmp_path)
