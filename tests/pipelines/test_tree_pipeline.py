"""End to end: tree rollouts with the tree advantage in both pipelines; fewer tokens generated than leaves hold,
paths in the rollout dumps, and a killed sync run resumes bitwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from reasonrl.config import dump_config, load_config
from reasonrl.pipelines import async_rl, sync
from reasonrl.tracking import read_metrics, read_rollouts

from .conftest import QUICK
from .killing import kill_after_checkpoint

pytestmark = pytest.mark.slow

TREE = [
    *QUICK,
    "rollout.max_new_tokens=8",
    "train.steps=4",
    "logging.rollout_dump_every=1",
    "logging.plots=false",
    "logging.tensorboard=false",
    "rollout.tree.enabled=true",
    "rollout.tree.segment_tokens=2",
    "algorithm.advantage=tree",
]


def _rows(run_dir: Path) -> list[dict]:
    return [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]


def _assert_trees(run_dir: Path) -> None:
    rows = _rows(run_dir)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for row in rows:
        assert row["tree/generated_tokens"] == row["rollout/generated_tokens"]
        assert row["tree/generated_tokens"] < row["tree/leaf_tokens"]
        assert row["tree/token_saving"] > 0
    for step in range(1, 5):
        records = read_rollouts(run_dir / "rollouts" / f"step_{step:06d}.jsonl")
        for start in range(0, len(records), 4):  # QUICK: groups of 4
            paths = [r["tree_path"] for r in records[start : start + 4]]
            assert all(paths) and len(set(paths)) == 4


def test_sync_tree_rollouts_train_and_resume_bitwise(tmp_path: Path) -> None:
    recipe = tmp_path / "tree.yaml"
    recipe.write_text(dump_config(load_config(None, [*TREE, "checkpoint.every_steps=1"])))
    reference = tmp_path / "uninterrupted"
    sync.train(load_config(recipe, [f"logging.run_dir={reference}"]))
    _assert_trees(reference)

    killed = tmp_path / "killed"
    kill_after_checkpoint(recipe, killed, step=2)
    sync.train(load_config(killed / "config.yaml", [f"logging.run_dir={killed}"]), resume=True)
    skip = ("time/", "perf/")
    expected = {r["step"]: {k: v for k, v in r.items() if not k.startswith(skip)} for r in _rows(reference)}
    resumed = {r["step"]: {k: v for k, v in r.items() if not k.startswith(skip)} for r in _rows(killed)}
    assert resumed == expected
    final = AutoModelForCausalLM.from_pretrained(killed / "checkpoints" / "step_000004" / "model").state_dict()
    straight = AutoModelForCausalLM.from_pretrained(reference / "checkpoints" / "step_000004" / "model").state_dict()
    assert all(torch.equal(final[k], straight[k]) for k in final)


def test_async_tree_rollouts_train(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    async_rl.train(
        load_config(None, [*TREE, f"logging.run_dir={run_dir}", "pipeline=async", "async_training.max_staleness=1"])
    )
    _assert_trees(run_dir)
