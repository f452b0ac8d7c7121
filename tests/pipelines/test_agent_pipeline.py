"""End to end: calculator episodes on the tiny tool model in both pipelines. The warm-up learns from
demonstration episodes; rollout dumps carry masks and episode records; episode metrics are logged; the held-out
evaluation runs episodes; a killed sync run resumes bitwise; async partial rollouts continue episodes across
versions and a crash, their environments rebuilt from the checkpoint."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from reasonrl.config import dump_config, load_config
from reasonrl.pipelines import async_rl, sync
from reasonrl.pipelines.async_rl import AsyncHooks
from reasonrl.tracking import read_metrics, read_rollouts

from .killing import kill_after_checkpoint

pytestmark = pytest.mark.slow

AGENT = [
    "model.path=builtin:tiny-tools",
    "data.train=mul?size=200",
    "rollout.environment.name=calculator",
    "rollout.environment.max_turns=3",
    "rollout.environment.max_turn_tokens=64",
    "rollout.group_size=4",
    "rollout.batch_size=16",
    "rollout.max_new_tokens=140",
    "algorithm.reward.workers=0",
    "train.steps=3",
    "train.lr=0.001",
    "train.num_threads=1",
    "train.sft.steps=40",
    "train.sft.lr=0.003",
    "train.sft.batch_size=16",
    "eval.max_prompts=8",
    "logging.progress=false",
    "logging.rollout_dump_every=1",
    "logging.plots=false",
    "logging.tensorboard=false",
]


def _rows(run_dir: Path) -> list[dict]:
    return [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]


def _assert_episodes(run_dir: Path, steps: int) -> None:
    rows = _rows(run_dir)
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    for row in rows:
        assert row["episode/turns_mean"] >= 1
        assert row["episode/sampled_tokens_mean"] == row["response_length/mean"]
        shares = sum(row[f"episode/stop_{k}_share"] for k in ("answer", "max_turns", "length", "error"))
        assert shares == pytest.approx(1.0)
    # After the warm-up on demonstrations the policy calls its tool: environment tokens reach the batch.
    assert any(row["episode/tool_calls_mean"] > 0 and row["episode/environment_tokens_mean"] > 0 for row in rows)
    records = read_rollouts(run_dir / "rollouts" / "step_000001.jsonl")
    for record in records:
        mask, episode = record["response_mask"], record["episode"]
        assert len(mask) == len(record["response_ids"]) == len(record["behaviour_logprobs"])
        assert all(lp == 0.0 for lp, m in zip(record["behaviour_logprobs"], mask, strict=True) if m == 0)
        assert episode["turns"] == len(episode["turn_spans"]) and record["judged_answer"] is not None
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0.0 <= summary["accuracy_after"] <= 1.0


def test_sync_agent_episodes_train_and_resume_bitwise(tmp_path: Path) -> None:
    recipe = tmp_path / "agent.yaml"
    recipe.write_text(dump_config(load_config(None, [*AGENT, "checkpoint.every_steps=1"])))
    reference = tmp_path / "uninterrupted"
    sync.train(load_config(recipe, [f"logging.run_dir={reference}"]))
    _assert_episodes(reference, 3)

    killed = tmp_path / "killed"
    kill_after_checkpoint(recipe, killed, step=2)
    sync.train(load_config(killed / "config.yaml", [f"logging.run_dir={killed}"]), resume=True)
    skip = ("time/", "perf/")
    expected = {r["step"]: {k: v for k, v in r.items() if not k.startswith(skip)} for r in _rows(reference)}
    resumed = {r["step"]: {k: v for k, v in r.items() if not k.startswith(skip)} for r in _rows(killed)}
    assert resumed == expected
    final = AutoModelForCausalLM.from_pretrained(killed / "checkpoints" / "step_000003" / "model").state_dict()
    straight = AutoModelForCausalLM.from_pretrained(reference / "checkpoints" / "step_000003" / "model").state_dict()
    assert all(torch.equal(final[k], straight[k]) for k in final)


class _Crash(RuntimeError):
    pass


def test_async_partial_episodes_continue_across_versions_and_a_crash(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    overrides = [
        *AGENT,
        f"logging.run_dir={run_dir}",
        "pipeline=async",
        "async_training.max_staleness=2",
        "async_training.partial_rollouts=true",
        "train.steps=4",
        "checkpoint.every_steps=1",
    ]

    def crash_at_step_three(step: int) -> None:
        time.sleep(0.2)  # let the producer run ahead, leaving episodes in flight
        if step == 3:
            raise _Crash("stopped on purpose")

    with pytest.raises(_Crash):
        async_rl.train(load_config(None, overrides), hooks=AsyncHooks(on_update=crash_at_step_three))
    saved = json.loads((run_dir / "checkpoints" / "step_000002" / "state.json").read_text())
    members = [m for g in saved["rollouts"]["groups"] for m in g["members"]]
    assert members and all(m["episode"] is not None and len(m["mask"]) == len(m["response_ids"]) for m in members)

    summary = async_rl.train(load_config(run_dir / "config.yaml", [f"logging.run_dir={run_dir}"]), resume=True)
    assert summary["steps"] == 4
    rows = _rows(run_dir)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert any(r["partial/continued_samples"] > 0 for r in rows)
