"""Loss aggregation modes, micro-batch accumulation with a global denominator, and Dr.GRPO vs GRPO."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from reasonrl.algorithms import (
    ADVANTAGES,
    LOSS_AGGREGATIONS,
    AdvantageInputs,
    aggregate_loss,
    loss_denominator,
    policy_loss,
)

close = partial(torch.testing.assert_close, rtol=1e-10, atol=1e-12)
F64 = torch.float64
INF = math.inf

# Two responses of lengths 3 and 1; padding holds garbage (99 and inf) that must never leak.
LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 99.0, INF]], dtype=F64)
MASK = torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=torch.bool)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("token-mean", (1 + 2 + 3 + 4) / 4),  # 10 / 4 real tokens = 2.5
        ("seq-mean-token-mean", (6 / 3 + 4 / 1) / 2),  # (2 + 4) / 2 responses = 3
        ("seq-mean-token-sum", (6 + 4) / 2),  # 5
        ("seq-mean-token-sum-norm", 10 / (2 * 3)),  # sum / (B * T), T = 3 by default
    ],
)
def test_modes(mode: str, expected: float) -> None:
    close(aggregate_loss(LOSS, MASK, mode), torch.tensor(expected, dtype=F64))


def test_dr_grpo_norm_constant() -> None:
    # 10 / (2 responses * max_new_tokens 5) = 1
    close(aggregate_loss(LOSS, MASK, "seq-mean-token-sum-norm", norm_constant=5), torch.tensor(1.0, dtype=F64))


def test_empty_batch_aggregates_to_zero() -> None:
    for mode in LOSS_AGGREGATIONS.names():
        close(aggregate_loss(LOSS, torch.zeros_like(MASK), mode), torch.tensor(0.0, dtype=F64))


# Four responses of lengths 4, 1, 2, 3; micro-batches [0:2] and [2:4], the second padded only to width 3.
BIG_LOSS = torch.arange(1.0, 17.0, dtype=F64).reshape(4, 4)
BIG_MASK = torch.arange(4)[None, :] < torch.tensor([4, 1, 2, 3])[:, None]


@pytest.mark.parametrize("mode", LOSS_AGGREGATIONS.names())
def test_micro_batches_with_the_global_denominator_equal_the_whole_batch(mode: str) -> None:
    norm = {"norm_constant": 6} if mode == "seq-mean-token-sum-norm" else {}
    whole_param = BIG_LOSS.clone().requires_grad_(True)
    whole = aggregate_loss(whole_param, BIG_MASK, mode, **norm)
    whole.backward()

    denominator = loss_denominator(BIG_MASK, mode, **norm)
    micro_param = BIG_LOSS.clone().requires_grad_(True)
    first = aggregate_loss(micro_param[:2], BIG_MASK[:2], mode, denominator=denominator)
    second = aggregate_loss(micro_param[2:, :3], BIG_MASK[2:, :3], mode, denominator=denominator)
    (first + second).backward()

    close(first + second, whole)
    close(micro_param.grad, whole_param.grad)


def test_token_mean_micro_batches_by_hand() -> None:
    # 10 real tokens; micro 1 = rows 0-1 (1+2+3+4) + 5 = 15, micro 2 = rows 2-3 (9+10) + (13+14+15) = 61
    denominator = loss_denominator(BIG_MASK, "token-mean")
    close(denominator, torch.tensor(10))
    first = aggregate_loss(BIG_LOSS[:2], BIG_MASK[:2], "token-mean", denominator=denominator)
    second = aggregate_loss(BIG_LOSS[2:], BIG_MASK[2:], "token-mean", denominator=denominator)
    close(first, torch.tensor(1.5, dtype=F64))
    close(second, torch.tensor(6.1, dtype=F64))
    close(first + second, aggregate_loss(BIG_LOSS, BIG_MASK, "token-mean"))  # 76 / 10


def test_dr_grpo_differs_from_grpo_by_std_and_length_normalisation() -> None:
    # Plain policy gradient (identical old/new log-probs): d loss / d logprob_{i,t} = -A_i * weight_i.
    # GRPO (group-std advantage, seq-mean-token-mean): weight 1 / (B |y_i|)
    # Dr.GRPO (centred advantage, seq-mean-token-sum-norm with constant L): weight 1 / (B L), length-free.
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=F64)
    lengths = torch.tensor([4, 1, 2, 3])
    mask = torch.arange(4)[None, :] < lengths[:, None]
    logprobs = torch.full((4, 4), -1.0, dtype=F64)

    def gradient(estimator: str, mode: str) -> torch.Tensor:
        advantages = ADVANTAGES.get(estimator)(AdvantageInputs(rewards, mask, 4))
        current = logprobs.clone().requires_grad_(True)
        loss, _ = policy_loss("ppo", current, logprobs, advantages, mask)
        norm = {"norm_constant": 8} if mode == "seq-mean-token-sum-norm" else {}
        aggregate_loss(loss, mask, mode, **norm).backward()
        return current.grad

    grpo = gradient("grpo", "seq-mean-token-mean")
    dr_grpo = gradient("dr_grpo", "seq-mean-token-sum-norm")
    # one group: mean 0.5, centred [0.5, -0.5, -0.5, 0.5], std = sqrt(4 * 0.25 / 3) = sqrt(1/3)
    centred = torch.tensor([0.5, -0.5, -0.5, 0.5], dtype=F64)[:, None] * mask
    std = math.sqrt(1 / 3) + 1e-6
    close(dr_grpo, -centred / (4 * 8))
    close(grpo, -centred / std / (4 * lengths[:, None]) * mask)
    # The exact relation: undo GRPO's std division and its 1/|y_i|, apply Dr.GRPO's constant 1/L.
    close(grpo * std * lengths[:, None] / 8, dr_grpo)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown loss aggregation 'token-sum'"):
        aggregate_loss(LOSS, MASK, "token-sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only applies to seq-mean-token-sum-norm"):
        loss_denominator(MASK, "token-mean", norm_constant=5)
    with pytest.raises(ValueError, match="not together with a denominator"):
        aggregate_loss(LOSS, MASK, "seq-mean-token-sum-norm", denominator=3.0, norm_constant=5)
    with pytest.raises(ValueError, match="mask has shape"):
        aggregate_loss(LOSS, MASK[:, :2])
    with pytest.raises(ValueError, match="norm_constant must be positive"):
        loss_denominator(MASK, "seq-mean-token-sum-norm", norm_constant=0)
