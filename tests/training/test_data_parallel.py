"""Data-parallel learner ranks (DDP and FSDP2 over gloo) compute what one learner computes: the same gradient for
every loss aggregation mode, the same loss curves with a reference, an entropy bonus, several epochs and
mini-batches, or a critic, and sharded checkpoints that continue bit for bit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from reasonrl.algorithms import LOSS_AGGREGATIONS
from reasonrl.config import load_config
from reasonrl.training.batch import Batch
from reasonrl.training.learner import Learner
from reasonrl.training.parallel import SINGLE, DataParallel, balanced_rows

from .learner_ranks import run_ranks

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

GROUP = 4
MODES = sorted(LOSS_AGGREGATIONS.names())
CURVE = [
    "train.lr=0.001",
    "algorithm.kl_coef=0.05",
    "algorithm.entropy_coef=0.01",
    "train.ppo_epochs=2",
    "train.mini_batches=2",
]
QUANTILE = re.compile(r"_p\d+$")
CRITIC = ["train.lr=0.001", "algorithm.advantage=gae", "algorithm.critic.critic_only_steps=1"]


def build(folder: Path, parallel: DataParallel, *overrides: str) -> Learner:
    config = load_config(
        None,
        ["rollout.group_size=4", "rollout.batch_size=8", "train.lr=0.01", "train.micro_batch_tokens=20", *overrides],
    )
    torch.manual_seed(0)
    return Learner(
        folder, config.model, config.train, config.algorithm, torch.device("cpu"), max_new_tokens=8, parallel=parallel
    )


def responses(learner: Learner, step: int = 0) -> tuple[list[list[int]], list[list[int]], list[float]]:
    """Two prompts x 4 responses of different lengths; the rewarded one changes with `step`."""
    tok = learner.tokenizer
    prompts = [tok("3+4=")["input_ids"], tok("9-2=")["input_ids"]]
    texts = ("7", "8 and more", "12", "6", "7", "11", "1 then 2", "70")
    answers = [tok(t)["input_ids"] + [tok.eos_token_id] for t in texts]
    rewards = [float((row + step) % 3 == 0) for row in range(8)]
    return [prompts[i // GROUP] for i in range(8)], answers, rewards


def one_update(learner: Learner) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    prompts, answers, rewards = responses(learner)
    batch, _ = learner.prepare(prompts, answers, [[0.0] * len(a) for a in answers], rewards, GROUP)
    batch.behaviour_logprobs = None
    metrics = learner.update(batch, GROUP)
    grads = {
        name: (p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad).clone()
        for name, p in learner.model.named_parameters()
        if p.grad is not None
    }
    return grads, metrics


def gradients_per_mode(parallel: DataParallel, folder: Path) -> dict[str, Any]:
    return {mode: one_update(build(folder, parallel, f"algorithm.loss_aggregation={mode}")) for mode in MODES}


def curve(learner: Learner, steps: int) -> list[dict[str, float]]:
    rows = []
    for step in range(steps):
        prompts, answers, rewards = responses(learner, step)
        batch, prepared = learner.prepare(prompts, answers, [[-1.0] * len(a) for a in answers], rewards, GROUP)
        rows.append({**prepared, **learner.update(batch, GROUP)})
    return rows


def curves(parallel: DataParallel, folder: Path) -> dict[str, list[dict[str, float]]]:
    return {"curve": curve(build(folder, parallel, *CURVE), 10), "critic": curve(build(folder, parallel, *CRITIC), 4)}


def full_weights(learner: Learner) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in learner.engine_weights()}


def checkpoint_round_trip(parallel: DataParallel, folder: Path, work: str) -> dict[str, Any]:
    """Train 2 steps, save, train 2 more; a fresh learner restored from the save trains the same 2 steps."""
    first = build(folder, parallel, *CURVE, *CRITIC)
    curve(first, 2)
    state = first.save(Path(work))
    curve(first, 2)
    straight = full_weights(first)
    second = build(folder, parallel, *CURVE, *CRITIC)
    second.restore(Path(work), state)
    curve(second, 2)
    lean = Path(work) / "lean"  # checkpoint.save_optimizer: false
    lean_state = second.save(lean, optimizer=False)
    third = build(folder, parallel, *CURVE, *CRITIC)
    third.restore(lean, lean_state)
    assert third.critic is not None
    assert not third.optimizer.state and not third.critic.optimizer.state  # Adam's moments start again from zero
    return {
        "straight": straight,
        "resumed": full_weights(second),
        "lean": full_weights(third),
        "files": sorted(p.name for p in Path(work).iterdir()),
    }


def test_rows_are_balanced_by_tokens_and_every_row_has_one_owner() -> None:
    lengths = [9, 1, 8, 2, 7, 3, 6, 4]
    owned = balanced_rows(lengths, 2)
    assert sorted(owned[0] + owned[1]) == list(range(8))
    assert [sum(lengths[r] for r in rows) for rows in owned] == [20, 20]
    assert balanced_rows(lengths, 1) == [list(range(8))]


def test_every_rank_runs_as_many_passes_as_the_busiest(tiny_model_dir: Path) -> None:
    learner = build(tiny_model_dir, SINGLE)
    prompts, answers, _ = responses(learner)
    batch = Batch.from_ids(prompts[:3], answers[:3])
    plans = [DataParallel(rank=rank, world=4).micro_plan(batch, 20) for rank in range(4)]
    assert len({len(plan) for plan in plans}) == 1
    assert sorted(row for plan in plans for rows in plan if rows is not None for row in rows) == [0, 1, 2]
    assert plans[3] == [None]  # three rows, four ranks: the last one only pads


@pytest.fixture(scope="module")
def one_rank_gradients(tiny_model_dir: Path) -> dict[str, Any]:
    return gradients_per_mode(SINGLE, tiny_model_dir)


@pytest.fixture(scope="module")
def one_rank_curves(tiny_model_dir: Path) -> dict[str, list[dict[str, float]]]:
    return curves(SINGLE, tiny_model_dir)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp2"])
def test_two_ranks_give_one_rank_gradient_for_every_aggregation(
    tiny_model_dir: Path, one_rank_gradients: dict[str, Any], strategy: str
) -> None:
    one = one_rank_gradients
    two = run_ranks(2, strategy, gradients_per_mode, tiny_model_dir)
    for mode in MODES:
        (grads_one, metrics_one), (grads_two, metrics_two) = one[mode], two[mode]
        assert grads_one.keys() == grads_two.keys() and grads_one
        worst = max(float((grads_one[name] - grads_two[name]).abs().max()) for name in grads_one)
        assert worst <= 1e-6, f"{mode}: gradients differ by {worst}"
        for name in ("loss/policy", "policy/clip_frac_high", "entropy/mean", "train/grad_norm"):
            assert metrics_two[name] == pytest.approx(metrics_one[name], abs=1e-5), (mode, name)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp2"])
def test_two_ranks_follow_one_rank_loss_curves(
    tiny_model_dir: Path, one_rank_curves: dict[str, list[dict[str, float]]], strategy: str
) -> None:
    one = one_rank_curves
    two = run_ranks(2, strategy, curves, tiny_model_dir)
    for name in ("curve", "critic"):
        assert len(one[name]) == len(two[name])
        for step, (a, b) in enumerate(zip(one[name], two[name], strict=True)):
            assert a.keys() == b.keys()
            for key in a:
                # A quantile metric is the token-weighted mean of its micro-batches' quantiles (as for one rank
                # with another micro_batch_tokens): it depends on how rows fall into micro-batches.
                if key.startswith("time/") or QUANTILE.search(key):
                    continue
                # Losses to 1e-5; other metrics (norms of order 1) to a relative 1e-5 as well.
                tolerance = {"abs": 1e-5} if key.startswith("loss/") else {"abs": 1e-5, "rel": 1e-5}
                assert b[key] == pytest.approx(a[key], **tolerance), (name, step, key)
    assert any(abs(row["loss/kl"]) > 0 for row in one["curve"][1:])  # the reference took part
    assert "critic/value_loss" in one["critic"][-1]


@pytest.mark.parametrize("strategy", ["ddp", "fsdp2"])
def test_a_sharded_checkpoint_continues_bit_for_bit(tiny_model_dir: Path, tmp_path: Path, strategy: str) -> None:
    found = run_ranks(2, strategy, checkpoint_round_trip, tiny_model_dir, str(tmp_path / "checkpoint"))
    assert found["files"] == ["lean", "learner", "model"]
    assert found["straight"].keys() == found["resumed"].keys() == found["lean"].keys()
    for name, tensor in found["straight"].items():
        assert torch.equal(tensor, found["resumed"][name]), name
        assert torch.equal(found["resumed"][name], found["lean"][name]), name  # the weights came back whole


def lora_gradients(parallel: DataParallel, folder: Path, export: str) -> tuple[dict[str, torch.Tensor], ...]:
    """The adapters' gradient after one update with a KL term (the adapter-free base is the reference), the
    merged weights an engine receives after it, and what the exported Hugging Face folder holds."""
    learner = build(folder, parallel, "model.lora.enabled=true", "model.lora.r=4", "algorithm.kl_coef=0.05")
    grads, _ = one_update(learner)
    merged = full_weights(learner)
    learner.save_model(Path(export))
    exported = load_file(Path(export) / "model.safetensors") if parallel.leader else {}
    adapter = load_file(Path(export) / "adapter" / "adapter_model.safetensors") if parallel.leader else {}
    return grads, merged, exported, adapter


@pytest.mark.parametrize("strategy", ["ddp", "fsdp2"])
def test_lora_on_two_ranks_gives_one_rank_adapters_and_merged_weights(
    tiny_model_dir: Path, tmp_path: Path, strategy: str
) -> None:
    one_grads, one_weights, one_export, one_adapter = lora_gradients(SINGLE, tiny_model_dir, str(tmp_path / "one"))
    two_grads, two_weights, two_export, two_adapter = run_ranks(
        2, strategy, lora_gradients, tiny_model_dir, str(tmp_path / "two")
    )
    assert one_grads.keys() == two_grads.keys() and all("lora_" in name for name in one_grads)
    for name, grad in one_grads.items():
        assert float((grad - two_grads[name]).abs().max()) <= 1e-6, name
    assert one_weights.keys() == two_weights.keys()
    for name, weight in one_weights.items():
        assert float((weight - two_weights[name]).abs().max()) <= 1e-5, name  # after one Adam step
    # (A tied LM head is written once, or, when the one-rank merge copied it, twice: transformers loads both.)
    assert set(two_export) <= set(one_export) and one_adapter.keys() == two_adapter.keys() and two_adapter
    for name, weight in two_export.items():
        assert torch.equal(weight, two_weights[name]), name  # the export is the engines' merged weights
