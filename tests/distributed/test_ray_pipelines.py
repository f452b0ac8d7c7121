"""The sync and async pipelines on Ray against the local backend, and what happens when an engine dies or
hangs mid-step: every sample exactly once, the same tokens and losses as a local run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.pipelines.conftest import QUICK
from tests.pipelines.killing import kill_after_checkpoint

from reasonrl.config import dump_config, load_config
from reasonrl.distributed import replicas as replicas_module
from reasonrl.pipelines import async_rl, sync
from reasonrl.pipelines.step import TrainingStopped
from reasonrl.tracking import read_metrics

from .conftest import RAY_SETS

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(300), pytest.mark.usefixtures("ray_instance")]

SHORT = [*QUICK, "train.steps=2", "train.sft.steps=0", "eval.max_prompts=8"]


def training_rows(run_dir: Path) -> dict[int, dict[str, Any]]:
    """Per-step training metrics without wall-clock or per-process ones."""
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    return {
        r["step"]: {
            k: v
            for k, v in r.items()
            if not k.startswith(("time/", "perf/", "distributed/", "async/")) and not k.endswith("_seconds")
        }
        for r in rows
    }


def distributed_rows(run_dir: Path) -> list[dict[str, float]]:
    rows = read_metrics(run_dir / "metrics.jsonl")
    return [{k: v for k, v in r.items() if k.startswith("distributed/")} for r in rows if "reward/mean" in r]


def dumped_tokens(run_dir: Path) -> list[tuple[Any, ...]]:
    """Every dumped sample's tokens, behaviour log-probs and reward (not the reward's wall-clock seconds)."""
    rows = [json.loads(line) for line in (run_dir / "rollouts" / "step_000002.jsonl").read_text().splitlines()]
    return [(r["prompt_ids"], r["response_ids"], r["behaviour_logprobs"], r["reward"]) for r in rows]


def run_sync(run_dir: Path, *sets: str) -> dict[str, Any]:
    return sync.train(load_config(None, [*SHORT, f"logging.run_dir={run_dir}", *sets]))


@pytest.fixture(scope="module")
def local_seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """The local run every seeded Ray run must reproduce."""
    run_dir = tmp_path_factory.mktemp("local-seeded")
    run_sync(run_dir, "rollout.seed_per_request=true")
    return training_rows(run_dir)


def test_sync_on_ray_gives_the_local_tokens_and_losses(tmp_path: Path) -> None:
    run_sync(tmp_path / "local")
    run_sync(tmp_path / "ray", *RAY_SETS)
    local, remote = training_rows(tmp_path / "local"), training_rows(tmp_path / "ray")
    assert local == remote and len(local) == 2
    metrics = distributed_rows(tmp_path / "ray")[-1]
    assert metrics["distributed/engine0/weight_version"] == 2.0  # published after each of the 2 updates
    assert metrics["distributed/engine0/restarts"] == 0.0 and metrics["distributed/engine0/pid"] > 0
    assert metrics["distributed/engine0/tokens_per_second"] > 0
    assert metrics["distributed/pool0/reward0/pid"] > 0
    assert 0 < metrics["distributed/moving_share"] < 1

    assert dumped_tokens(tmp_path / "ray") == dumped_tokens(tmp_path / "local")


def test_async_at_staleness_0_on_ray_gives_the_local_tokens_and_losses(tmp_path: Path) -> None:
    sets = ["pipeline=async", "async_training.max_staleness=0"]
    for name, extra in (("local", []), ("ray", RAY_SETS)):
        async_rl.train(load_config(None, [*SHORT, f"logging.run_dir={tmp_path / name}", *sets, *extra]))
    local, remote = training_rows(tmp_path / "local"), training_rows(tmp_path / "ray")
    assert local == remote and len(local) == 2
    # A step's metrics are logged before it publishes its weights: step 2 generated on version 1.
    assert [r["distributed/engine0/weight_version"] for r in distributed_rows(tmp_path / "ray")] == [0.0, 1.0]


def signal_engine_once(monkeypatch: pytest.MonkeyPatch, *signals: signal.Signals) -> dict[str, int]:
    """Send `signals` to the engine replica serving the second step's generate call as soon as the call is
    submitted: SIGSTOP first holds it mid-call (it cannot answer a 50 ms call within microseconds)."""
    original = replicas_module._Call._submit_whole
    sent: dict[str, int] = {}

    def submit(self: Any, replica: Any, start: int, end: int) -> Any:
        ref = original(self, replica, start, end)
        if not sent and self.owner.version == 1:
            sent["pid"] = replica.pid
            for sig in signals:
                os.kill(replica.pid, sig)
        return ref

    monkeypatch.setattr(replicas_module._Call, "_submit_whole", submit)
    return sent


def test_an_engine_killed_mid_step_loses_no_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_seeded: dict[int, dict[str, Any]]
) -> None:
    sent = signal_engine_once(monkeypatch, signal.SIGSTOP, signal.SIGKILL)
    run_sync(tmp_path, *RAY_SETS, "rollout.seed_per_request=true")
    assert sent, "the engine was never signalled"
    assert training_rows(tmp_path) == local_seeded  # every sample, once, the tokens of the lost ones
    last = distributed_rows(tmp_path)
    assert [row["distributed/engine0/restarts"] for row in last] == [0.0, 1.0]
    assert last[-1]["distributed/engine0/pid"] != sent["pid"]


def test_a_hung_engine_is_killed_restarted_and_its_requests_regenerated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_seeded: dict[int, dict[str, Any]]
) -> None:
    sent = signal_engine_once(monkeypatch, signal.SIGSTOP)
    sets = ["distributed.call_timeout_seconds=3", "distributed.seconds_per_token=0"]
    run_sync(tmp_path, *RAY_SETS, *sets, "rollout.seed_per_request=true")
    assert sent
    assert training_rows(tmp_path) == local_seeded
    assert distributed_rows(tmp_path)[-1]["distributed/engine0/restarts"] == 1.0


def test_too_many_restarts_end_the_run_with_a_checkpoint_that_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_seeded: dict[int, dict[str, Any]]
) -> None:
    signal_engine_once(monkeypatch, signal.SIGSTOP, signal.SIGKILL)
    sets = [*RAY_SETS, "rollout.seed_per_request=true"]
    with pytest.raises(TrainingStopped) as stopped:
        run_sync(tmp_path, *sets, "distributed.max_restarts=0")
    message = str(stopped.value)
    assert "engine replica 0 failed (died: " in message and "distributed.max_restarts: 0" in message
    assert "logs" in message and "checkpoint saved at step 1" in message and "--resume" in message
    assert (tmp_path / "checkpoints" / "step_000001").is_dir()
    monkeypatch.undo()
    sync.train(load_config(None, [*SHORT, f"logging.run_dir={tmp_path}", *sets]), resume=True)
    assert training_rows(tmp_path) == local_seeded


def reasonrl(run_dir: Path, *sets: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "reasonrl", "train", "--run-dir", str(run_dir)]
    for item in sets:
        command += ["--set", item]
    return subprocess.run(command, capture_output=True, text=True, timeout=280, check=False)


def test_the_cli_runs_async_partial_rollouts_on_two_replicas_of_its_own_ray_instance(tmp_path: Path) -> None:
    """`reasonrl train --set distributed.backend=ray` on one machine, no other set-up: a Ray instance of its
    own, two engine replicas, and the staleness bound and partial rollouts across them."""
    sets = [
        *SHORT,
        "train.steps=3",
        "pipeline=async",
        "async_training.partial_rollouts=true",
        "async_training.max_staleness=2",
        "rollout.max_new_tokens=12",
        "distributed.backend=ray",
        "distributed.engine.replicas=2",
        "distributed.engine.cpus=0.5",
    ]
    done = reasonrl(tmp_path, *sets)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 3
    rows = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "reward/mean" in r]
    assert len(rows) == 3
    for row in rows:
        assert row["async/staleness_max"] <= 2
        assert row["distributed/engine0/pid"] != row["distributed/engine1/pid"]
    assert sum(r["distributed/engine1/tokens_per_second"] for r in rows) > 0  # both replicas generated


def test_the_cli_reports_an_impossible_placement_as_one_clear_error(tmp_path: Path) -> None:
    done = reasonrl(tmp_path, *SHORT, "distributed.backend=ray", "distributed.engine.gpus=4")
    assert done.returncode == 2
    assert "distributed.engine: one replica needs" in done.stderr and "no node has GPU 4" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_killed_driver_resumes_from_its_last_checkpoint_on_ray(
    tmp_path: Path, local_seeded: dict[int, dict[str, Any]]
) -> None:
    """The learner runs in the driver: SIGKILL it after its first checkpoint, `--resume` finishes the run
    with the steps an uninterrupted run takes."""
    sets = [*SHORT, "checkpoint.every_steps=1", "rollout.seed_per_request=true", *RAY_SETS]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(dump_config(load_config(None, sets)))
    run_dir = tmp_path / "run"
    kill_after_checkpoint(recipe, run_dir, step=1, timeout=200)
    command = [sys.executable, "-m", "reasonrl", "train", str(recipe), "--resume", str(run_dir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert training_rows(run_dir) == local_seeded
