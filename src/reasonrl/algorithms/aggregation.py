"""Loss aggregation: per-token losses [B, T] → one scalar (the four modes of verl's `agg_loss`).

Every mode is a sum of (weighted) token losses divided by a denominator:

| mode                      | numerator                      | denominator                        |
|---------------------------|--------------------------------|------------------------------------|
| `token-mean`              | Σ_i Σ_t L_it                   | number of real tokens              |
| `seq-mean-token-mean`     | Σ_i (1/|y_i|) Σ_t L_it         | number of responses                |
| `seq-mean-token-sum`      | Σ_i Σ_t L_it                   | number of responses                |
| `seq-mean-token-sum-norm` | Σ_i Σ_t L_it                   | number of responses · norm_constant|

`token-mean` is DAPO's token-level loss (arXiv 2503.14476) and verl's default; `seq-mean-token-mean` is the
original GRPO (arXiv 2402.03300); `seq-mean-token-sum-norm` is Dr.GRPO's constant normaliser
(arXiv 2503.20783), norm_constant = the longest allowed response. Responses are counted when they have at
least one real token.

Gradient accumulation: the numerator is additive over responses, so splitting a mini-batch into micro-batches
and giving each the *mini-batch's* denominator (`loss_denominator(full_mask, mode)`) makes the sum of the
micro-batch losses equal the mini-batch loss, and so their gradients.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from reasonrl.algorithms.masking import valid_mask

AggregationMode = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"]
AGGREGATION_MODES: tuple[str, ...] = get_args(AggregationMode)


def _check_mode(mode: str) -> None:
    if mode not in AGGREGATION_MODES:
        raise ValueError(f"unknown loss aggregation {mode!r}; choose one of: {', '.join(AGGREGATION_MODES)}")


def loss_denominator(mask: Tensor, mode: AggregationMode, *, norm_constant: float | None = None) -> Tensor:
    """The denominator of `mode` for the responses in `mask` [B, T] (a 0-dim tensor, at least 1).

    norm_constant (only `seq-mean-token-sum-norm`): defaults to T, the mask's width; pass the configured
    maximum response length so every micro-batch and step uses the same constant.
    """
    _check_mode(mode)
    valid = mask.bool()
    count = valid.sum() if mode == "token-mean" else valid.any(dim=-1).sum()
    if mode == "seq-mean-token-sum-norm":
        constant = mask.shape[-1] if norm_constant is None else norm_constant
        if constant <= 0:
            raise ValueError(f"norm_constant must be positive, got {constant}")
        return count.clamp_min(1) * constant
    if norm_constant is not None:
        raise ValueError(f"norm_constant only applies to seq-mean-token-sum-norm, not to {mode}")
    return count.clamp_min(1)


def aggregate_loss(
    loss: Tensor,
    mask: Tensor,
    mode: AggregationMode = "token-mean",
    *,
    denominator: Tensor | float | None = None,
    norm_constant: float | None = None,
) -> Tensor:
    """Aggregate per-token `loss` [B, T] over the real tokens of `mask` (see the module table).

    denominator: the mini-batch's `loss_denominator(...)` when `loss` is one micro-batch of it; None = this
    batch's own. norm_constant: see `loss_denominator` (give it there, or here when denominator is None).
    An empty batch aggregates to 0.
    """
    valid = valid_mask(mask, loss)
    _check_mode(mode)
    token_losses = torch.where(valid, loss, 0.0)
    if mode == "seq-mean-token-mean":
        lengths = valid.sum(dim=-1).clamp_min(1)
        numerator = (token_losses.sum(dim=-1) / lengths).sum()
    else:
        numerator = token_losses.sum()
    if denominator is None:
        denominator = loss_denominator(mask, mode, norm_constant=norm_constant)
    elif norm_constant is not None:
        raise ValueError("give norm_constant to loss_denominator, not together with a denominator")
    return numerator / denominator
