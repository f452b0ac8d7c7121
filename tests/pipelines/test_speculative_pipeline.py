"""End to end: speculative rollouts in both pipelines on a small training set whose prompts recur every epoch.
From the second epoch responses start from their drafts; a run killed after a checkpoint resumes bitwise (the
draft cache and the uniforms' generator are in the checkpoint)."""

from __future__ import annotations

import json
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

# 16 prompts, 4 per step: an epoch is 4 steps, so steps 5-8 see every prompt a second time.
EPOCHS = [
    *QUICK,
    "data.train=sum?size=16",
    "rollout.max_new_tokens=8",
    "train.steps=8",
    "logging.rollout_dump_every=1",
    "logging.plots=false",
    "logging.tensorboard=false",
    "rollout.speculative.enabled=true",
]


def _rows(run_dir: Path) -> list[dict]:
    return [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]


def _assert_second_epoch_reuses(run_dir: Path) -> None:
    rows = _rows(run_dir)
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert all(r["speculative/drafts"] == 0 for r in rows[:4])  # first epoch: nothing cached yet
    assert all(r["speculative/drafts"] == 16 for r in rows[4:])  # every response of the second has a draft
    assert sum(r["speculative/reused_tokens"] for r in rows[4:]) > 0
    for row in rows[4:]:
        share = row["speculative/reused_tokens"] / (row["speculative/reused_tokens"] + row["rollout/generated_tokens"])
        assert row["speculative/reused_token_share"] == pytest.approx(share)


def test_the_sync_pipeline_reuses_drafts_in_the_second_epoch_and_resumes_bitwise(tmp_path: Path) -> None:
    recipe = tmp_path / "spec.yaml"
    recipe.write_text(dump_config(load_config(None, [*EPOCHS, "checkpoint.every_steps=1"])))
    reference = tmp_path / "uninterrupted"
    sync.train(load_config(recipe, [f"logging.run_dir={reference}"]))
    _assert_second_epoch_reuses(reference)
    # Lenient reuse: kept tokens keep the version that sampled them, older than the step's.
    records = read_rollouts(reference / "rollouts" / "step_000006.jsonl")
    assert any(min(r["policy_version"]) < r["start_version"] for r in records)

    killed = tmp_path / "killed"
    kill_after_checkpoint(recipe, killed, step=5)  # the cache holds a whole epoch by then
    saved = json.loads((killed / "checkpoints" / "step_000005" / "state.json").read_text())
    assert len(saved["rollouts"]["speculative"]["cache"]) == 16 * 4
    sync.train(load_config(killed / "config.yaml", [f"logging.run_dir={killed}"]), resume=True)
    skip = ("time/", "perf/", "speculative/verify_seconds", "speculative/cache_seconds")
    expected = {r["step"]: {k: v for k, v in r.items() if not k.startswith(skip)} for r in _rows(reference)}
    resumed = {r["step"]: {k: v for k, v in r.items() if not k.startswith(skip)} for r in _rows(killed)}
    assert resumed == expected
    final = AutoModelForCausalLM.from_pretrained(killed / "checkpoints" / "step_000008" / "model").state_dict()
    straight = AutoModelForCausalLM.from_pretrained(reference / "checkpoints" / "step_000008" / "model").state_dict()
    assert all(torch.equal(final[k], straight[k]) for k in final)


@pytest.mark.parametrize("mode", ["lenient", "exact"])
def test_the_async_pipeline_reuses_drafts_with_its_engine_in_a_thread_or_a_process(tmp_path: Path, mode: str) -> None:
    placement = "thread" if mode == "lenient" else "process"  # the engine process scores drafts across its pipe
    run_dir = tmp_path / "run"
    overrides = [
        *EPOCHS,
        f"logging.run_dir={run_dir}",
        "pipeline=async",
        "async_training.max_staleness=1",
        "rollout.engine=hf",
        f"rollout.placement={placement}",
        f"rollout.speculative.mode={mode}",
    ]
    async_rl.train(load_config(None, overrides))
    _assert_second_epoch_reuses(run_dir)
    for step in range(5, 9):
        for record in read_rollouts(run_dir / "rollouts" / f"step_{step:06d}.jsonl"):
            assert 0 <= (step - 1) - record["start_version"] <= 1  # the staleness bound counts from verification
            if mode == "exact":  # every token is the verifying policy's sample
                assert set(record["policy_version"]) == {record["start_version"]}
