"""End to end: the sync pipeline trains, logs, checkpoints, and resumes after SIGKILL exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasonrl.config import dump_config, load_config
from reasonrl.pipelines.sync import train
from reasonrl.tracking import read_metrics

from .conftest import QUICK
from .killing import kill_after_checkpoint

pytestmark = pytest.mark.slow


def test_a_short_run_writes_everything_a_user_looks_for(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    summary = train(load_config(None, [*QUICK, f"logging.run_dir={run_dir}", "checkpoint.every_steps=2"]))
    assert set(summary) >= {
        "accuracy_before",
        "accuracy_after",
        "wall_seconds",
        "steps",
        "samples_per_second",
    }
    assert summary["steps"] == 4 and summary["samples_per_second"] > 0
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 4
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4, 4]
    step = rows[1]
    for key in (
        "reward/mean", "accuracy/train", "response_length/mean", "rollout/truncated_share",
        "rollout/identical_reward_groups", "policy/clip_frac_high", "entropy/mean", "train/grad_norm",
        "train/lr", "perf/samples_per_second", "time/generate", "time/reward", "time/logprobs",
        "time/update", "time/weight_sync",
    ):  # fmt: skip
        assert key in step, key
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_000002", "step_000004"]
    folder = run_dir / "checkpoints" / "step_000004" / "model"
    AutoModelForCausalLM.from_pretrained(folder)
    AutoTokenizer.from_pretrained(folder)
    assert (run_dir / "rollouts" / "step_000002.jsonl").is_file()
    assert {p.name for p in (run_dir / "plots").iterdir()} >= {"reward.png", "accuracy.png"}
    assert any((run_dir / "tensorboard").iterdir())
    assert (run_dir / "sft_model" / "config.json").is_file()


def _steps(run_dir: Path) -> dict[int, dict]:
    """Per-step training metrics without wall-clock ones (those differ between any two runs)."""
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    return {r["step"]: {k: v for k, v in r.items() if not k.startswith(("time/", "perf/"))} for r in rows}


def test_resume_after_sigkill_continues_bitwise(tmp_path: Path) -> None:
    recipe = tmp_path / "quick.yaml"
    recipe.write_text(dump_config(load_config(None, [*QUICK, "train.steps=6", "checkpoint.every_steps=1"])))
    reference = tmp_path / "uninterrupted"
    train(load_config(recipe, [f"logging.run_dir={reference}"]))

    killed = tmp_path / "killed"
    kill_after_checkpoint(recipe, killed, step=3)

    summary = train(load_config(killed / "config.yaml", [f"logging.run_dir={killed}"]), resume=True)
    assert summary["steps"] == 6
    expected, resumed = _steps(reference), _steps(killed)
    assert sorted(resumed) == [1, 2, 3, 4, 5, 6]  # no step lost or logged twice
    for step in range(1, 7):
        assert resumed[step] == expected[step], f"step {step} differs after resume"
    final = AutoModelForCausalLM.from_pretrained(killed / "checkpoints" / "step_000006" / "model").state_dict()
    uninterrupted = AutoModelForCausalLM.from_pretrained(
        reference / "checkpoints" / "step_000006" / "model"
    ).state_dict()
    assert all(torch.equal(final[k], uninterrupted[k]) for k in final)


def test_training_with_the_vllm_engine_syncs_weights_every_step(tmp_path: Path) -> None:
    """`reasonrl train` with rollout.engine=vllm: vLLM samples, the learner updates, weights go back in place."""
    recipe = tmp_path / "quick.yaml"
    recipe.write_text(dump_config(load_config(None, [*QUICK, "train.steps=3", "rollout.engine=vllm"])))
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "reasonrl", "train", str(recipe), "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(r["time/weight_sync"] > 0 for r in rows)
    # The engine sampled from the policy the learner scores: on-policy ratios start at 1 (up to kernel rounding).
    assert all(abs(r["policy/behaviour_ratio_mean"] - 1.0) < 1e-3 for r in rows)
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 3


def test_repeated_nonfinite_losses_stop_the_run_with_a_checkpoint(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import reasonrl.training.learner as learner_module
    from reasonrl.pipelines.step import TrainingStopped

    real = learner_module.compute_advantages

    def poisoned(*args, **kwargs):  # type: ignore[no-untyped-def]
        advantages, metrics = real(*args, **kwargs)
        return advantages * float("nan"), metrics

    monkeypatch.setattr(learner_module, "compute_advantages", poisoned)
    run_dir = tmp_path / "run"
    config = load_config(None, [*QUICK, f"logging.run_dir={run_dir}", "train.max_nonfinite_steps=2"])
    with pytest.raises(TrainingStopped, match=r"non-finite for 2 steps in a row .* checkpoint saved at step 2"):
        train(config)
    assert (run_dir / "checkpoints" / "step_000002" / "model" / "config.json").is_file()
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "train/skipped_nonfinite" in r]
    assert [r["train/skipped_nonfinite"] for r in rows] == [1.0, 1.0]


def test_a_reward_that_raises_scores_zero_and_the_run_goes_on(tmp_path: Path) -> None:
    plugin = tmp_path / "flaky_reward.py"
    plugin.write_text(
        "def flaky(response, answer, meta=None):\n"
        "    if len(response) % 2:\n"
        "        raise RuntimeError('flaky reward failed on purpose')\n"
        "    return float(response.strip() == str(answer))\n"
    )
    run_dir = tmp_path / "run"
    reward = f"algorithm.reward.functions=[{{name: '{plugin}:flaky'}}]"
    summary = train(load_config(None, [*QUICK, f"logging.run_dir={run_dir}", reward, "logging.rollout_dump_every=1"]))
    assert summary["steps"] == 4
    dumped = [json.loads(line) for line in (run_dir / "rollouts" / "step_000001.jsonl").read_text().splitlines()]
    failed = [r for r in dumped if r["reward_info"]["error"]]
    assert failed and all("flaky reward failed on purpose" in r["reward_info"]["error"] for r in failed)
    assert all(r["reward"] == 0.0 for r in failed)
    assert any(r["reward_info"]["error"] is None for r in dumped)


ALWAYS_RAISES = "def broken(response, answer, meta=None):\n    return {'score': 1.0}[response]\n"


def test_a_reward_that_fails_on_every_sample_stops_the_run_after_three_steps(tmp_path: Path) -> None:
    from reasonrl.rewards.failures import RewardsFailing

    plugin = tmp_path / "broken_reward.py"
    plugin.write_text(ALWAYS_RAISES)
    run_dir = tmp_path / "run"
    reward = f"algorithm.reward.functions=[{{name: '{plugin}:broken'}}]"
    config = load_config(None, [*QUICK, f"logging.run_dir={run_dir}", reward, "train.steps=6"])
    with pytest.raises(RewardsFailing) as caught:
        train(config)
    message = str(caught.value)
    assert "the reward failed on every sample of 3 training steps in a row" in message
    assert f"'{plugin}:broken'" in message
    assert "First error: reward 'broken' failed: KeyError:" in message
    assert "algorithm.reward.max_failed_steps" in message
    # The third failed batch is refused before its update: steps 1 and 2 trained and were logged.
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["rollout/reward_error_share"] == 1.0 for r in rows)
