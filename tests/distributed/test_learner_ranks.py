"""Data-parallel learner ranks as Ray actors inside the sync pipeline: two ranks train as the local learner does,
rank 0 publishes the weights (bucketed, gathered one tensor at a time under FSDP2), a rank killed mid-step
stops the run with a clear message, and `--resume` then finishes exactly as an uninterrupted run."""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file

from reasonrl.config import load_config
from reasonrl.distributed import learner_group
from reasonrl.pipelines import async_rl, sync
from reasonrl.pipelines.step import TrainingStopped

from .conftest import RAY_SETS
from .test_ray_pipelines import SHORT, distributed_rows, training_rows

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(400), pytest.mark.usefixtures("ray_instance")]

QUANTILE = re.compile(r"_p\d+$")
RANKS = [*RAY_SETS, "distributed.engine.cpus=0.25", "distributed.learner.replicas=2", "distributed.learner.cpus=0.5"]
# Checkpoints every step (the killed run resumes from one) and 1 MiB buckets (the ~3 MB model in several).
SETTINGS = ["checkpoint.every_steps=1", "distributed.learner.bucket_mb=1"]


@pytest.fixture(scope="module")
def varied_reward(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A reward that differs within groups, so every step has a real gradient (the tiny model scores 0)."""
    plugin = tmp_path_factory.mktemp("plugin") / "varied_reward.py"
    plugin.write_text("def varied(response, answer, meta=None):\n    return float(len(response) % 3)\n")
    return f"algorithm.reward.functions=[{{name: '{plugin}:varied'}}]"


def run(run_dir: Path, reward: str, *sets: str, resume: bool = False) -> dict[str, Any]:
    config = load_config(None, [*SHORT, reward, "train.steps=3", f"logging.run_dir={run_dir}", *sets])
    return sync.train(config, resume=resume)


ASYNC_LORA = ["pipeline=async", "async_training.max_staleness=0", "model.lora.enabled=true", "model.lora.r=4"]
# The async pipeline has two engines (the producer's and the held-out one) and three reward pools: rewards
# reserve no CPU here.
ASYNC_RANKS = ["distributed.reward.cpus=0", "distributed.start_timeout_seconds=60"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, varied_reward: str) -> Path:
    """Uninterrupted runs shared by the tests below: sync with DDP ranks, async with LoRA on FSDP2 ranks, and the
    local learner's run of each."""
    root = tmp_path_factory.mktemp("learner-ranks")
    run(root / "local-ddp", varied_reward, *SETTINGS[:1])
    run(root / "ddp", varied_reward, *RANKS, *SETTINGS, "distributed.learner.strategy=ddp")
    run_async = [*SHORT, varied_reward, "train.steps=3", *ASYNC_LORA, *SETTINGS[:1]]
    async_rl.train(load_config(None, [*run_async, f"logging.run_dir={root / 'local-fsdp2'}"]))
    ranks = [*RANKS, *SETTINGS, *ASYNC_RANKS, "distributed.learner.strategy=fsdp2"]
    async_rl.train(load_config(None, [*run_async, f"logging.run_dir={root / 'fsdp2'}", *ranks]))
    return root


def assert_same_training(local: dict[int, dict[str, Any]], ranks: dict[int, dict[str, Any]]) -> None:
    assert local.keys() == ranks.keys() and len(local) == 3
    for step, row in local.items():
        assert row.keys() == ranks[step].keys()
        for key, value in row.items():
            if QUANTILE.search(key):  # per-micro-batch quantiles depend on how rows fall into micro-batches
                continue
            assert ranks[step][key] == pytest.approx(value, abs=1e-5, rel=1e-5), (step, key)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp2"])
def test_two_ranks_train_as_the_local_learner(runs: Path, strategy: str) -> None:
    """ddp: the sync pipeline; fsdp2: the async one at staleness 0, with LoRA (the engines get merged weights)."""
    tmp_path = runs
    assert_same_training(training_rows(tmp_path / f"local-{strategy}"), training_rows(tmp_path / strategy))
    metrics = distributed_rows(tmp_path / strategy)[-1]
    assert metrics["distributed/learner0/pid"] != metrics["distributed/learner1/pid"]
    # (async logs a step before it publishes that step's weights)
    assert metrics["distributed/learner_push_seconds"] > 0 and metrics["distributed/engine0/weight_version"] >= 2.0
    model = metrics["distributed/learner_model_bytes"]
    assert model > 2**20  # the tiny model (~3 MB) went out in more than one 1 MiB bucket
    held = metrics["distributed/learner_push_peak_bytes"]
    if strategy == "fsdp2":  # gathered tensors beyond the shard: at most a bucket and the tensor that filled it
        assert 0 < held < 2 * 2**20 and held < model / 2
    else:  # replicated weights are packed as views of the live parameters
        assert held == 0
    checkpoint = tmp_path / strategy / "checkpoints" / "step_000003"
    assert (checkpoint / "learner" / ".metadata").is_file()  # torch.distributed.checkpoint's index
    local = tmp_path / f"local-{strategy}" / "checkpoints" / "step_000003" / "model"
    local_weights = load_file(local / "model.safetensors")
    rank_weights = load_file(checkpoint / "model" / "model.safetensors")
    # (with LoRA the one-rank export writes the tied LM head twice, the sharded one once)
    assert set(rank_weights) <= set(local_weights) and len(rank_weights) >= len(local_weights) - 1
    for name, tensor in rank_weights.items():  # Adam divides by sqrt(v): rounding steers near-zero gradients
        assert (tensor - local_weights[name]).abs().max() < 1e-4, name
    if strategy == "fsdp2":
        assert (checkpoint / "model" / "adapter" / "adapter_model.safetensors").is_file()


def test_a_killed_rank_stops_the_run_and_resume_finishes_it_exactly(
    runs: Path, tmp_path: Path, varied_reward: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sets = [*RANKS, *SETTINGS]  # as the uninterrupted ddp run

    original = learner_group.LearnerGroup.update
    killed: list[int] = []

    def update(self: learner_group.LearnerGroup, batch: Any, group_size: int) -> dict[str, float]:
        if self.calls == 2 and not killed:  # the third step, after two checkpoints: rank 0, the leader, mid-call
            killed.append(self.pids[0])
            threading.Timer(0.02, os.kill, (self.pids[0], signal.SIGKILL)).start()
        self.calls += 1
        return original(self, batch, group_size)

    monkeypatch.setattr(learner_group.LearnerGroup, "calls", 0, raising=False)
    monkeypatch.setattr(learner_group.LearnerGroup, "update", update)
    with pytest.raises(TrainingStopped) as stopped:
        run(tmp_path / "killed", varied_reward, *sets)
    message = str(stopped.value)
    # (the update, or the weight push right after it when the kill lands between the two calls)
    assert killed and "learner rank 0 died during" in message
    assert "step_000002" in message and "--resume" in message
    monkeypatch.undo()

    run(tmp_path / "killed", varied_reward, *sets, resume=True)
    assert training_rows(tmp_path / "killed") == training_rows(runs / "ddp")
    final = [
        load_file(folder / "checkpoints" / "step_000003" / "model" / "model.safetensors")
        for folder in (runs / "ddp", tmp_path / "killed")
    ]
    assert final[0].keys() == final[1].keys()
    assert all(final[0][name].equal(final[1][name]) for name in final[0])
