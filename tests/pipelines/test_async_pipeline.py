"""The async pipeline's contract: staleness 0 is the sync pipeline, the bound holds under any timing, no
prompt is lost or trained twice, and a stopped run resumes where it stopped."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from reasonrl.config import dump_config, load_config
from reasonrl.data import PromptSampler, load_source
from reasonrl.pipelines import async_rl, sync
from reasonrl.pipelines.async_rl import AsyncHooks
from reasonrl.tracking import read_metrics, read_rollouts

from .conftest import QUICK
from .killing import kill_after_checkpoint

pytestmark = pytest.mark.slow

STEPS = 6
PROMPTS_PER_STEP = 4  # QUICK: batch 16, group 4


@pytest.fixture
def varied_reward(tmp_path: Path) -> str:
    """A reward that differs within groups, so every step has a real gradient (the tiny model scores 0)."""
    plugin = tmp_path / "varied_reward.py"
    plugin.write_text("def varied(response, answer, meta=None):\n    return float(len(response) % 3)\n")
    return f"algorithm.reward.functions=[{{name: '{plugin}:varied'}}]"


def _overrides(run_dir: Path, reward: str, *extra: str) -> list[str]:
    return [
        *QUICK,
        reward,
        f"train.steps={STEPS}",
        f"logging.run_dir={run_dir}",
        "logging.rollout_dump_every=1",
        "logging.plots=false",
        "logging.tensorboard=false",
        *extra,
    ]


def _steps(run_dir: Path) -> dict[int, dict]:
    """Per-step metrics without wall-clock ones and without the async pipeline's own."""
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    skip = ("time/", "perf/", "async/", "rollout/reward_seconds")
    return {r["step"]: {k: v for k, v in r.items() if not k.startswith(skip)} for r in rows}


def _trained_prompts(run_dir: Path) -> list[list[str]]:
    """The prompt id of each trained group, step by step, from the rollout dumps."""
    steps = []
    for path in sorted((run_dir / "rollouts").glob("step_*.jsonl")):
        records = read_rollouts(path)
        steps.append([r["prompt_id"] for r in records[:: len(records) // PROMPTS_PER_STEP]])
    return steps


def _sampler_order(overrides: list[str], count: int) -> list[str]:
    config = load_config(None, overrides)
    prompts, _ = load_source(config.data.train, config_key="data.train")
    return [p.id for p in PromptSampler(prompts, shuffle=config.data.shuffle, seed=config.data.seed).next_batch(count)]


def test_staleness_zero_reproduces_the_sync_pipeline(tmp_path: Path, varied_reward: str) -> None:
    sync_dir, async_dir = tmp_path / "sync", tmp_path / "async"
    sync.train(load_config(None, _overrides(sync_dir, varied_reward, "algorithm.correction=decoupled")))
    async_rl.train(
        load_config(None, _overrides(async_dir, varied_reward, "pipeline=async", "async_training.max_staleness=0"))
    )
    expected, got = _steps(sync_dir), _steps(async_dir)
    assert sorted(got) == list(range(1, STEPS + 1))
    for step in expected:
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), f"step {step} differs"
    for step in range(1, STEPS + 1):
        name = f"step_{step:06d}.jsonl"
        sync_rows = read_rollouts(sync_dir / "rollouts" / name)
        async_rows = read_rollouts(async_dir / "rollouts" / name)
        assert [r["response_ids"] for r in async_rows] == [r["response_ids"] for r in sync_rows]
        assert [r["prompt_id"] for r in async_rows] == [r["prompt_id"] for r in sync_rows]
        assert all(r["start_version"] == step - 1 for r in async_rows)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_staleness_stays_bounded_and_every_prompt_is_trained_once_under_random_delays(
    tmp_path: Path, varied_reward: str, seed: int
) -> None:
    rng = random.Random(seed)
    max_staleness = rng.choice([1, 2])
    generate_delays = {i: rng.uniform(0, 0.05) for i in range(STEPS)}
    update_delays = {i: rng.uniform(0, 0.1) for i in range(1, STEPS + 1)}
    hooks = AsyncHooks(
        on_generate=lambda index: time.sleep(generate_delays[index]),
        on_update=lambda step: time.sleep(update_delays[step]),
    )
    run_dir = tmp_path / "run"
    overrides = _overrides(run_dir, varied_reward, "pipeline=async", f"async_training.max_staleness={max_staleness}")
    async_rl.train(load_config(None, overrides), hooks=hooks)

    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert all(r["async/staleness_max"] <= max_staleness for r in rows)
    assert any(r["async/staleness_max"] > 0 for r in rows), "generation never ran ahead; nothing was tested"
    assert all(r["train/policy_version"] == r["step"] for r in rows)
    for step in range(1, STEPS + 1):
        records = read_rollouts(run_dir / "rollouts" / f"step_{step:06d}.jsonl")
        assert all(0 <= (step - 1) - r["start_version"] <= max_staleness for r in records)
    trained = [prompt for step in _trained_prompts(run_dir) for prompt in step]
    assert trained == _sampler_order(overrides, STEPS * PROMPTS_PER_STEP)  # none lost, none twice, in order


class _Crash(RuntimeError):
    pass


def test_a_stopped_run_resumes_its_outstanding_prompts_and_version(tmp_path: Path, varied_reward: str) -> None:
    run_dir = tmp_path / "run"
    overrides = _overrides(
        run_dir, varied_reward, "pipeline=async", "async_training.max_staleness=2", "checkpoint.every_steps=1"
    )

    def crash_at_step_four(step: int) -> None:
        time.sleep(0.1)  # let the producer run its full two batches ahead
        if step == 4:
            raise _Crash("stopped on purpose")

    with pytest.raises(_Crash):
        async_rl.train(load_config(None, overrides), hooks=AsyncHooks(on_update=crash_at_step_four))
    saved = json.loads((run_dir / "checkpoints" / "step_000003" / "state.json").read_text())
    assert saved["version"] == 3 and saved["step"] == 3
    assert saved["outstanding"], "the producer had drawn prompts ahead; the checkpoint must keep them"

    summary = async_rl.train(load_config(run_dir / "config.yaml", [f"logging.run_dir={run_dir}"]), resume=True)
    assert summary["steps"] == STEPS
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))  # no step lost or logged twice
    assert all(r["train/policy_version"] == r["step"] for r in rows)
    trained = [prompt for step in _trained_prompts(run_dir) for prompt in step]
    assert trained == _sampler_order(overrides, STEPS * PROMPTS_PER_STEP)


def test_resume_after_sigkill_continues_bitwise_at_staleness_zero(tmp_path: Path, varied_reward: str) -> None:
    """`reasonrl train` dispatches on `pipeline`; the checkpoint is taken while the producer waits, so a
    killed and resumed run matches an uninterrupted one exactly, weights included."""
    recipe = tmp_path / "async.yaml"
    settings = [varied_reward, "pipeline=async", "async_training.max_staleness=0", "checkpoint.every_steps=1"]
    recipe.write_text(dump_config(load_config(None, _overrides(tmp_path / "unused", *settings))))
    reference = tmp_path / "uninterrupted"
    async_rl.train(load_config(recipe, [f"logging.run_dir={reference}"]))

    killed = tmp_path / "killed"
    kill_after_checkpoint(recipe, killed, step=3)

    summary = async_rl.train(load_config(killed / "config.yaml", [f"logging.run_dir={killed}"]), resume=True)
    assert summary["steps"] == STEPS
    expected, resumed = _steps(reference), _steps(killed)
    assert sorted(resumed) == list(range(1, STEPS + 1))
    for step in range(1, STEPS + 1):
        assert resumed[step] == expected[step], f"step {step} differs after resume"
    final_name = f"step_{STEPS:06d}"
    final = AutoModelForCausalLM.from_pretrained(killed / "checkpoints" / final_name / "model").state_dict()
    uninterrupted = AutoModelForCausalLM.from_pretrained(reference / "checkpoints" / final_name / "model").state_dict()
    assert all(torch.equal(final[k], uninterrupted[k]) for k in final)


def test_partial_filtered_and_selective_rollouts_keep_the_contract_across_a_crash(
    tmp_path: Path, varied_reward: str
) -> None:
    run_dir = tmp_path / "run"
    overrides = _overrides(
        run_dir,
        varied_reward,
        "pipeline=async",
        "async_training.max_staleness=2",
        "async_training.partial_rollouts=true",
        "rollout.selective_rollouts=true",
        "algorithm.dynamic_sampling=true",
        "rollout.max_new_tokens=12",
        "checkpoint.every_steps=1",
    )

    def crash_at_step_four(step: int) -> None:
        time.sleep(0.05)
        if step == 4:
            raise _Crash("stopped on purpose")

    with pytest.raises(_Crash):
        async_rl.train(load_config(None, overrides), hooks=AsyncHooks(on_update=crash_at_step_four))
    saved = json.loads((run_dir / "checkpoints" / "step_000003" / "state.json").read_text())
    in_flight = saved["rollouts"]["groups"]
    assert in_flight, "partial rollouts keep over-provisioned groups in flight; the checkpoint must hold them"
    assert {g["prompt"] for g in in_flight} <= set(saved["outstanding"])
    assert saved["rollouts"]["selective"]["traces"], "the GRESO history is part of the checkpoint"

    async_rl.train(load_config(run_dir / "config.yaml", [f"logging.run_dir={run_dir}"]), resume=True)
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert all(r["async/staleness_max"] <= 2 for r in rows)
    assert all({"partial/aborted_requests", "dynamic_sampling/kept_groups", "greso/p_easy"} <= set(r) for r in rows)
    trained: list[str] = []
    for step in range(1, STEPS + 1):
        records = read_rollouts(run_dir / "rollouts" / f"step_{step:06d}.jsonl")
        for record in records:
            versions = record["policy_version"]
            assert versions == sorted(versions) and versions[0] == record["start_version"]
            assert 0 <= (step - 1) - record["start_version"] <= 2
        groups = [records[i : i + 4] for i in range(0, len(records), 4)]
        if not rows[step - 1]["dynamic_sampling/gave_up"]:
            assert all(len({r["reward"] for r in group}) > 1 for group in groups)
        trained += [group[0]["prompt_id"] for group in groups]
    assert len(trained) == len(set(trained)), "a prompt was trained twice"


def test_a_reward_that_fails_on_every_sample_stops_an_async_run_with_a_clear_error(tmp_path: Path) -> None:
    """Through the CLI: the message names the fix, not a traceback, and the producer thread is stopped."""
    from typer.testing import CliRunner

    from reasonrl.cli.app import app

    plugin = tmp_path / "broken_reward.py"
    plugin.write_text("def broken(response, answer, meta=None):\n    raise RuntimeError('no scoring today')\n")
    recipe = tmp_path / "async.yaml"
    reward = f"algorithm.reward.functions=[{{name: '{plugin}:broken'}}]"
    recipe.write_text(dump_config(load_config(None, _overrides(tmp_path / "run", reward, "pipeline=async"))))
    result = CliRunner().invoke(app, ["train", str(recipe)])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())  # rich wraps the message to the terminal width
    assert "error: the reward failed on every sample of 3 training steps in a row" in output
    assert "First error: reward 'broken' failed: RuntimeError: no scoring today" in output
    # The reward function's own traceback, not reasonrl's: the line that raised, in the user's file.
    assert "broken_reward.py" in output and "raise RuntimeError('no scoring today')" in output
    assert "reasonrl/pipelines" not in output


def test_greso_and_train_accuracy_read_the_verifier_not_the_shaped_reward(tmp_path: Path, varied_reward: str) -> None:
    # Before: the producer recorded `Sample.correct` before the learner asked the verifier, so GRESO's history
    # held `reward >= 1` of the shaped reward (here 0, 1 or 2 by response length) instead of correctness.
    run_dir = tmp_path / "run"
    overrides = _overrides(
        run_dir, varied_reward, "pipeline=async", "rollout.selective_rollouts=true", "checkpoint.every_steps=1"
    )
    async_rl.train(load_config(None, overrides))
    saved = json.loads((run_dir / "checkpoints" / f"step_{STEPS:06d}" / "state.json").read_text())
    traces = saved["rollouts"]["selective"]["traces"]
    expected: dict[str, list[float]] = {}
    rows = {r["step"]: r for r in read_metrics(run_dir / "metrics.jsonl") if "accuracy/train" in r}
    for step in range(1, STEPS + 1):
        records = read_rollouts(run_dir / "rollouts" / f"step_{step:06d}.jsonl")
        assert all(isinstance(r["reward_info"]["correct"], bool) for r in records)
        correct = [float(r["reward_info"]["correct"]) for r in records]
        assert rows[step]["accuracy/train"] == pytest.approx(sum(correct) / len(correct))
        for start in range(0, len(records), 4):
            expected.setdefault(records[start]["prompt_id"], []).append(sum(correct[start : start + 4]) / 4)
    assert traces == expected
    assert any(r["reward"] >= 1 and not r["reward_info"]["correct"] for r in records)  # the two really differ


@pytest.mark.timeout(180)
@pytest.mark.parametrize("max_staleness", [0, 1])
def test_a_batch_dropped_as_stale_is_replaced_and_the_run_ends(
    tmp_path: Path, varied_reward: str, max_staleness: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The admission bound makes a whole stale batch rare, so force one at step 2. Before: the producer never
    # admitted a batch past train.steps (the last step waited forever), and at max_staleness 0 the next batch
    # waited for a version the learner never published (a deadlock on the very next step).
    run_dir = tmp_path / "run"
    real_split = async_rl.split_by_staleness
    forced = []

    def drop_once(samples, version, bound, group_size):  # type: ignore[no-untyped-def]
        if version == 1 and not forced:
            forced.append(len(samples))
            return [], list(samples)
        return real_split(samples, version, bound, group_size)

    monkeypatch.setattr(async_rl, "split_by_staleness", drop_once)
    overrides = _overrides(run_dir, varied_reward, "pipeline=async", f"async_training.max_staleness={max_staleness}")
    summary = async_rl.train(load_config(None, overrides))
    assert summary["steps"] == STEPS and forced == [16]
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert rows[1]["async/dropped_stale_samples"] == 16.0
    trained = [p for step in _trained_prompts(run_dir) for p in step]
    assert len(trained) == len(set(trained)) == STEPS * PROMPTS_PER_STEP


def test_a_checkpoint_and_an_error_take_effect_within_a_decode_step_of_a_long_generation(
    tmp_path: Path, varied_reward: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A scripted engine whose second batch would decode for 30 s (3,000 steps of 10 ms). Before: the step-1
    # checkpoint waited for that whole call (through the engine lock) and so did the shutdown after an error.
    from tests.rollout.step_engine import StepEngine

    calls: list[int] = []

    def length(prompt_ids: list[int]) -> int:
        return 3 if len(engine.calls) <= 1 else 3000

    engine = StepEngine(length, step_seconds=0.01)
    monkeypatch.setattr(async_rl, "generation_engine", lambda run, seed: engine)
    real_checkpoint = async_rl.checkpoint
    seconds: dict[str, float] = {}

    def checkpoint_then_fail(run, producer):  # type: ignore[no-untyped-def]
        deadline = time.perf_counter() + 60
        while engine.steps < 10 and time.perf_counter() < deadline:  # make sure the long call is under way
            time.sleep(0.01)
        started = time.perf_counter()
        real_checkpoint(run, producer)
        seconds["checkpoint"] = time.perf_counter() - started
        calls.append(engine.steps)
        seconds["failed_at"] = time.perf_counter()
        raise _Crash("the learner failed")

    monkeypatch.setattr(async_rl, "checkpoint", checkpoint_then_fail)
    overrides = _overrides(
        tmp_path / "run",
        varied_reward,
        "pipeline=async",
        "async_training.max_staleness=1",
        "checkpoint.every_steps=1",
        "rollout.max_new_tokens=4000",
        "eval.max_new_tokens=5",
    )
    with pytest.raises(_Crash):
        async_rl.train(load_config(None, overrides))
    assert calls and calls[0] >= 10
    assert seconds["checkpoint"] < 5.0
    assert time.perf_counter() - seconds["failed_at"] < 5.0
    assert engine.steps < 1000  # the long call was cut short, not waited out
    saved = json.loads((tmp_path / "run" / "checkpoints" / "step_000001" / "state.json").read_text())
    assert all(0 < len(m["response_ids"]) < 3000 for g in saved["rollouts"]["groups"] for m in g["members"])
