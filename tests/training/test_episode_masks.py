"""Environment tokens (mask 0 inside a response) are context, never actions: every estimator, loss,
aggregation and KL term counts the sampled tokens only; the gradient at an environment position is exactly
zero, and perturbing what the model predicts there changes nothing."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from reasonrl.algorithms import ADVANTAGES, AdvantageInputs
from reasonrl.algorithms.masking import has_holes, pack, packed_positions, unpack
from reasonrl.config import load_config
from reasonrl.training.batch import Batch
from reasonrl.training.learner import Learner
from reasonrl.training.objective import Normalisers, compute_advantages, loss_terms, on_sampled_tokens

# Two groups of two episodes: sampled turns with environment tokens between them (0s), then padding.
MASKS = [[1, 1, 0, 0, 1, 1], [1, 0, 0, 1], [1, 1, 1, 0, 0, 1, 1, 1], [1, 1]]
REWARDS = [1.0, 0.0, 0.5, 0.0]


def holey_batch() -> Batch:
    responses = [[5 + i for i in range(len(m))] for m in MASKS]
    return Batch.from_ids([[1, 2]] * 4, responses, MASKS)


def test_packing_moves_sampled_tokens_left_and_back() -> None:
    mask = torch.tensor([[1.0, 1, 0, 0, 1, 1], [1, 0, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0]])
    assert has_holes(mask) and not has_holes(mask[2:])
    index, packed = packed_positions(mask)
    assert index.tolist() == [[0, 1, 4, 5], [0, 2, 1, 3], [0, 1, 2, 3]]
    assert packed.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]]
    values = torch.arange(18.0).reshape(3, 6)
    assert pack(values, index, packed).tolist() == [[0, 1, 4, 5], [6, 8, 0, 0], [12, 13, 14, 0]]
    assert unpack(pack(values, index, packed), index, packed, 6).tolist() == (values * mask).tolist()


def test_a_response_mask_must_match_its_response() -> None:
    with pytest.raises(ValueError, match="row 0: a response mask of 2 for 3 tokens"):
        Batch.from_ids([[1]], [[5, 6, 7]], [[1, 1]])


@pytest.mark.parametrize("estimator", ["grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "gae"])
def test_estimators_see_an_episode_as_its_sampled_tokens_alone(estimator: str) -> None:
    """With holes, each row's advantages equal those of the same row with its environment tokens removed
    (discounting and GAE step over them), and are 0 at the environment's positions."""
    batch = holey_batch()
    torch.manual_seed(0)
    values = torch.randn(batch.response_mask.shape)
    kl = torch.randn(batch.response_mask.shape) * 0.1
    inputs = AdvantageInputs(
        rewards=torch.tensor(REWARDS),
        mask=batch.response_mask,
        group_size=2,
        kl_penalty=kl,
        gamma=0.9,
        values=values * batch.response_mask,
        lam=0.8,
    )
    holey = on_sampled_tokens(ADVANTAGES.get(estimator), inputs)
    index, packed = packed_positions(batch.response_mask)
    compact = replace(inputs, mask=packed, kl_penalty=pack(kl, index, packed), values=pack(values, index, packed))
    expected = unpack(ADVANTAGES.get(estimator)(compact), index, packed, batch.response_mask.shape[1])
    torch.testing.assert_close(holey, expected)
    assert (holey[batch.response_mask == 0] == 0).all()
    right_padded = AdvantageInputs(rewards=torch.tensor(REWARDS), mask=packed, group_size=2)
    assert on_sampled_tokens(ADVANTAGES.get("grpo"), right_padded).shape == packed.shape


def loss_of(algorithm_overrides: list[str], logprobs: torch.Tensor, batch: Batch) -> torch.Tensor:
    config = load_config(None, ["rollout.group_size=2", "rollout.batch_size=4", *algorithm_overrides])
    algorithm = config.algorithm
    batch.advantages, _ = compute_advantages(algorithm, REWARDS, batch, 2)
    norms = Normalisers.of(batch, algorithm, max_new_tokens=8)
    entropy = torch.zeros_like(logprobs)
    terms, _ = loss_terms(algorithm, batch, logprobs, entropy, norms)
    return sum(terms.values())  # type: ignore[return-value]


SETTINGS = [
    [f"algorithm.policy_loss={loss}", f"algorithm.loss_aggregation={aggregation}"]
    for loss, aggregation in itertools.product(
        ["ppo", "gspo", "cispo", "gppo"], ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
    )
] + [
    ["algorithm.kl_coef=0.1", "algorithm.correction=tis"],
    ["algorithm.kl_coef=0.1", "algorithm.kl_estimator=k3", "algorithm.correction=icepop"],
    ["algorithm.correction=decoupled", "algorithm.advantage=rloo"],
]


@pytest.mark.parametrize("overrides", SETTINGS, ids=lambda o: ",".join(v.split("=")[1] for v in o))
def test_environment_positions_get_exactly_zero_gradient_and_no_influence(overrides: list[str]) -> None:
    batch = holey_batch()
    mask = batch.response_mask
    torch.manual_seed(1)
    base = -torch.rand(mask.shape) * mask
    batch.behaviour_logprobs = base + 0.05 * torch.randn(mask.shape) * mask
    batch.old_logprobs = base.clone()
    batch.ref_logprobs = base + 0.1 * torch.randn(mask.shape) * mask
    logprobs = (base + 0.02 * torch.randn(mask.shape) * mask).requires_grad_(True)
    loss = loss_of(overrides, logprobs, batch)
    loss.backward()
    assert logprobs.grad is not None
    assert (logprobs.grad[mask == 0] == 0).all()  # exactly zero, not merely small
    assert logprobs.grad[mask == 1].abs().sum() > 0
    # Whatever the model, the reference or the sampler say at environment positions is ignored.
    noise = torch.randn(mask.shape) * (1 - mask) * 3
    moved = replace(
        batch,
        behaviour_logprobs=batch.behaviour_logprobs + noise,
        old_logprobs=batch.old_logprobs + noise,
        ref_logprobs=batch.ref_logprobs + noise,
    )
    torch.testing.assert_close(loss_of(overrides, (logprobs + noise).detach(), moved), loss.detach())


def test_the_learner_never_trains_on_environment_tokens(tmp_path: Path) -> None:
    """End to end on the tiny model: the logits that predict environment tokens get exactly zero gradient."""
    from reasonrl.models.resolve import resolve_model_path

    folder = resolve_model_path("builtin:tiny-tools")
    config = load_config(None, ["rollout.group_size=2", "rollout.batch_size=4", "train.lr=0.01"])
    learner = Learner(folder, config.model, config.train, config.algorithm, torch.device("cpu"), max_new_tokens=8)
    responses = [[40 + i for i in range(len(m))] for m in MASKS]
    behaviour = [[-1.0 * t for t in m] for m in MASKS]
    batch, _ = learner.prepare([[2, 50, 3]] * 4, responses, behaviour, REWARDS, 2, response_masks=MASKS)
    assert batch.num_tokens == sum(map(sum, MASKS))
    captured: list[torch.Tensor] = []

    def keep(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> None:
        output.retain_grad()
        captured.append(output)

    handle = learner.model.lm_head.register_forward_hook(keep)
    try:
        learner.update(batch, 2)
    finally:
        handle.remove()
    from reasonrl.training.batch import micro_batches, model_inputs

    for logits, rows in zip(captured, micro_batches(batch, config.train.micro_batch_tokens), strict=True):
        part = batch.select(rows)
        positions = model_inputs(part, 0).response_positions
        assert logits.grad is not None
        for row, row_mask in enumerate(part.response_mask):
            for column, sampled in enumerate(row_mask.tolist()):
                if column >= len(part.response_ids[row]):
                    continue
                grad = logits.grad[row, positions[row, column]]
                assert (grad.abs().sum() > 0) == bool(sampled), (row, column)
