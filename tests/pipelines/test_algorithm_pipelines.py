"""End to end on the tiny model: DAPO dynamic sampling and PPO with a learned critic in the sync pipeline."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import pytest
import torch

from reasonrl.config import load_config
from reasonrl.pipelines.sync import train
from reasonrl.tracking import read_metrics

from .conftest import QUICK

pytestmark = pytest.mark.slow


def _step_rows(run_dir: Path) -> list[dict]:
    return [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]


def _dumped_groups(run_dir: Path, step: int) -> list[list[float]]:
    records = [json.loads(line) for line in (run_dir / "rollouts" / f"step_{step:06d}.jsonl").read_text().splitlines()]
    groups: dict[int, list[float]] = {}
    for record in records:
        groups.setdefault(record["group_index"], []).append(record["reward"])
    return list(groups.values())


def half_constant_reward(tmp_path: Path) -> str:
    """The override of a reward that scores prompts with an even answer 0 whatever the response (their
    groups must be dropped) and the others by the parity of the response's length (usually mixed)."""
    plugin = tmp_path / "half_constant.py"
    plugin.write_text(
        "def half_constant(response, answer, meta=None):\n"
        "    return 0.0 if int(answer) % 2 == 0 else float(len(response) % 2)\n"
    )
    return f"algorithm.reward.functions=[{{name: '{plugin}:half_constant'}}]"


def test_dynamic_sampling_trains_only_on_groups_with_differing_rewards(tmp_path: Path) -> None:
    # Prompts with an even answer score 0 whatever the response (their groups must be dropped); the others
    # score the parity of the response's length, which usually differs within a group.
    run_dir = tmp_path / "run"
    overrides = [
        f"logging.run_dir={run_dir}",
        half_constant_reward(tmp_path),
        "algorithm.dynamic_sampling=true",
        "algorithm.dynamic_sampling_max_extra_prompts=12",
        "logging.rollout_dump_every=1",
        "train.steps=3",
    ]
    assert train(load_config(None, [*QUICK, *overrides]))["steps"] == 3
    rows = _step_rows(run_dir)
    assert sum(r["dynamic_sampling/extra_prompts"] for r in rows) > 0  # the even-answer groups were refilled
    for row in rows:
        kept, dropped = row["dynamic_sampling/kept_groups"], row["dynamic_sampling/dropped_groups"]
        assert row["dynamic_sampling/extra_prompts"] <= 12
        # every generated group was kept, dropped, or (a refill draws missing / keep rate x 1.25) left ready
        # for the next batch, which at staleness 0 generates it again
        assert kept + dropped <= 4 + row["dynamic_sampling/extra_prompts"]
        assert kept == 4 or row["dynamic_sampling/gave_up"] == 1.0
        groups = _dumped_groups(run_dir, row["step"])
        if kept:
            assert len(groups) == kept and all(len(set(g)) > 1 for g in groups)
        assert math.isfinite(row["loss/policy"])


def test_dynamic_sampling_gives_up_after_its_budget_and_still_trains(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = tmp_path / "constant_reward.py"
    plugin.write_text("def constant(response, answer, meta=None):\n    return 0.0\n")
    run_dir = tmp_path / "run"
    overrides = [
        f"logging.run_dir={run_dir}",
        f"algorithm.reward.functions=[{{name: '{plugin}:constant'}}]",
        "algorithm.dynamic_sampling=true",
        "algorithm.dynamic_sampling_max_extra_prompts=3",
        "train.steps=2",
    ]
    with caplog.at_level(logging.WARNING, logger="reasonrl.rollout.scheduler"):
        assert train(load_config(None, [*QUICK, *overrides]))["steps"] == 2
    rows = _step_rows(run_dir)
    assert [r["dynamic_sampling/gave_up"] for r in rows] == [1.0, 1.0]
    assert [r["dynamic_sampling/extra_prompts"] for r in rows] == [3.0, 3.0]
    assert [r["dynamic_sampling/dropped_groups"] for r in rows] == [7.0, 7.0]
    assert all(r["train/skipped_nonfinite"] == 0.0 for r in rows)
    assert "step 1: dynamic sampling kept 0 of 4 groups after 3 extra prompts" in caplog.text
    assert "training on filtered groups unfiltered" in caplog.text


def test_dynamic_sampling_and_greso_in_the_sync_pipeline_resume_exactly(tmp_path: Path) -> None:
    # The sync pipeline drives the async scheduler at staleness 0: a checkpoint keeps the groups a refill drew
    # for a later batch, the keep rate and GRESO's history, so steps after a resume match the uninterrupted run.
    run_dir = tmp_path / "run"
    overrides = [
        f"logging.run_dir={run_dir}",
        half_constant_reward(tmp_path),
        "algorithm.dynamic_sampling=true",
        "rollout.selective_rollouts=true",
        "checkpoint.every_steps=2",
        "logging.rollout_dump_every=0",
        "logging.plots=false",
    ]
    config = load_config(None, [*QUICK, *overrides])
    assert train(config)["steps"] == 4
    rows = _comparable(run_dir)
    assert all(
        {"dynamic_sampling/kept_groups", "greso/p_easy", "rollout/generate_calls"} <= set(r) for r in rows.values()
    )
    saved = json.loads((run_dir / "checkpoints" / "step_000002" / "state.json").read_text())
    assert saved["rollouts"]["selective"]["traces"], "the GRESO history is part of the checkpoint"

    resumed = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step_000004")
    (resumed / "summary.json").unlink()
    train(
        config.model_copy(update={"logging": config.logging.model_copy(update={"run_dir": str(resumed)})}), resume=True
    )
    again = _comparable(resumed)
    for step in (3, 4):
        assert again[step] == rows[step], f"step {step} differs after resume"


def _comparable(run_dir: Path) -> dict[int, dict]:
    return {
        r["step"]: {k: v for k, v in r.items() if not k.startswith(("time/", "perf/"))} for r in _step_rows(run_dir)
    }


def _parity_reward(tmp_path: Path) -> str:
    """A reward that varies within groups (the tiny model rarely solves the task after 5 SFT steps), so a
    critic has returns to fit; as a config override."""
    plugin = tmp_path / "parity.py"
    plugin.write_text("def parity(response, answer, meta=None):\n    return float(len(response) % 2)\n")
    return f"algorithm.reward.functions=[{{name: '{plugin}:parity'}}]"


def test_ppo_with_a_critic_trains_logs_and_resumes_exactly(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    overrides = [
        f"logging.run_dir={run_dir}",
        _parity_reward(tmp_path),
        "algorithm.advantage=gae",
        "algorithm.critic.lr=0.001",
        "algorithm.critic.critic_only_steps=1",
        "checkpoint.every_steps=2",
        "logging.rollout_dump_every=0",
        "logging.plots=false",
    ]
    config = load_config(None, [*QUICK, *overrides])
    assert train(config)["steps"] == 4
    rows = _comparable(run_dir)
    assert sorted(rows) == [1, 2, 3, 4]
    for step, row in rows.items():
        for key in ("critic/value_loss", "critic/explained_variance", "critic/grad_norm", "advantage/std"):
            assert key in row and math.isfinite(row[key]), (step, key)
        assert all(math.isfinite(v) for v in row.values() if isinstance(v, float)), step
    assert rows[1]["critic/critic_only"] == 1.0 and "loss/policy" not in rows[1]
    assert all(rows[s]["critic/critic_only"] == 0.0 and math.isfinite(rows[s]["loss/policy"]) for s in (2, 3, 4))
    assert rows[4]["critic/lr"] == pytest.approx(0.001)
    assert all(rows[s]["critic/value_loss"] > 0 for s in rows) and rows[4]["critic/values_mean"] != 0
    trainer = torch.load(run_dir / "checkpoints" / "step_000004" / "trainer.pt", weights_only=False)
    assert trainer["learner"]["critic"]["steps_done"] == 4

    # Resume from the step-2 checkpoint: steps 3 and 4 (they depend on the critic's values) must match.
    resumed = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step_000004")
    (resumed / "summary.json").unlink()
    train(
        config.model_copy(update={"logging": config.logging.model_copy(update={"run_dir": str(resumed)})}), resume=True
    )
    again = _comparable(resumed)
    assert sorted(again) == [1, 2, 3, 4]
    for step in (3, 4):
        assert again[step] == rows[step], f"step {step} differs after resume"
    final = torch.load(resumed / "checkpoints" / "step_000004" / "trainer.pt", weights_only=False)
    for name, tensor in trainer["learner"]["critic"]["models"][0].items():
        assert torch.equal(tensor, final["learner"]["critic"]["models"][0][name]), name


def test_asyppo_mini_critics_train_without_nan(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    overrides = [
        f"logging.run_dir={run_dir}",
        _parity_reward(tmp_path),
        "algorithm.advantage=gae",
        "algorithm.critic.count=2",
        "algorithm.critic.lr=0.001",
        "algorithm.entropy_coef=0.001",
        "train.steps=3",
        "logging.plots=false",
    ]
    assert train(load_config(None, [*QUICK, *overrides]))["steps"] == 3
    rows = _step_rows(run_dir)
    for row in rows:
        assert all(math.isfinite(v) for v in row.values() if isinstance(v, float)), row["step"]
        assert 0.15 <= row["critic/advantage_masked_frac"] <= 0.2
        assert math.isfinite(row["loss/entropy"])
    assert rows[-1]["critic/value_std_mean"] > 0  # the critics drift apart on their own shards
    trainer = torch.load(run_dir / "checkpoints" / "step_000003" / "trainer.pt", weights_only=False)
    assert len(trainer["learner"]["critic"]["models"]) == 2
