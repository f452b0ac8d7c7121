"""The built-in demo's promise, checked on the real recipe: `reasonrl train` with no config lifts held-out
accuracy to at least 0.9, well above the SFT model.

The README quotes 0.68 -> 0.94 for the recipe's seed 0 (seeds 1 and 2 gave 0.55 -> 0.84 and 0.65 -> 0.95). The
bounds here leave room for other CPUs' floating-point kernels, which change sampled tokens and so the
trajectory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_reasonrl_train_without_arguments_runs_the_demo_and_rl_lifts_accuracy(tmp_path: Path) -> None:
    run_dir = tmp_path / "demo"
    command = [sys.executable, "-m", "reasonrl", "train", "--run-dir", str(run_dir), "--set", "logging.progress=false"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 900
    assert summary["accuracy_after"] >= 0.9
    assert summary["accuracy_after"] - summary["accuracy_before"] >= 0.2
    assert (run_dir / "sft_model" / "config.json").is_file()
    assert str(run_dir) in result.stdout
