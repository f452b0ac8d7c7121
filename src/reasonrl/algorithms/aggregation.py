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

Modes are registered in `LOSS_AGGREGATIONS` as `fn(token_losses [B, T], valid [B, T], *, <options>) ->
(numerator, denominator)`, both 0-dim, token_losses already zero on padding and the denominator at least 1
(or 0 for an empty batch, clamped by the caller). A mode that declares the keyword-only parameter
`norm_constant` receives the longest allowed response length from the trainer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from reasonrl.algorithms.masking import valid_mask
from reasonrl.plugins import Registry

Aggregation = Callable[..., tuple[Tensor, Tensor]]
LOSS_AGGREGATIONS: Registry[Aggregation] = Registry(
    "loss aggregation",
    call="fn(token_losses [B, T], valid [B, T], *, <options>) -> (numerator, denominator)",
    context=("norm_constant",),
)


def _responses(valid: Tensor) -> Tensor:
    """Responses with at least one real token, at least 1."""
    return valid.any(dim=-1).sum().clamp_min(1)


@LOSS_AGGREGATIONS.register("token-mean")
def token_mean(token_losses: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Σ_i Σ_t L_it / number of real tokens (DAPO, verl's default)."""
    return token_losses.sum(), valid.sum().clamp_min(1)


@LOSS_AGGREGATIONS.register("seq-mean-token-mean")
def seq_mean_token_mean(token_losses: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Σ_i (1/|y_i|) Σ_t L_it / number of responses (the original GRPO)."""
    lengths = valid.sum(dim=-1).clamp_min(1)
    return (token_losses.sum(dim=-1) / lengths).sum(), _responses(valid)


@LOSS_AGGREGATIONS.register("seq-mean-token-sum")
def seq_mean_token_sum(token_losses: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Σ_i Σ_t L_it / number of responses."""
    return token_losses.sum(), _responses(valid)


@LOSS_AGGREGATIONS.register("seq-mean-token-sum-norm")
def seq_mean_token_sum_norm(
    token_losses: Tensor, valid: Tensor, *, norm_constant: float | None = None
) -> tuple[Tensor, Tensor]:
    """Σ_i Σ_t L_it / (number of responses · norm_constant) (Dr.GRPO); norm_constant defaults to T."""
    constant = valid.shape[-1] if norm_constant is None else norm_constant
    if constant <= 0:
        raise ValueError(f"norm_constant must be positive, got {constant}")
    return token_losses.sum(), _responses(valid) * constant


def _apply(
    mode: str, loss: Tensor, mask: Tensor, norm_constant: float | None, options: dict[str, Any]
) -> tuple[Tensor, Tensor]:
    function = LOSS_AGGREGATIONS.get(mode)
    valid = valid_mask(mask, loss)
    context: dict[str, Any] = dict(options)
    if norm_constant is not None:
        if not LOSS_AGGREGATIONS.accepts(mode, "norm_constant"):
            raise ValueError(f"norm_constant only applies to seq-mean-token-sum-norm, not to {mode}")
        context["norm_constant"] = norm_constant
    return function(torch.where(valid, loss, 0.0), valid, **context)


def loss_denominator(mask: Tensor, mode: str, *, norm_constant: float | None = None, **options: Any) -> Tensor:
    """The denominator of `mode` for the responses in `mask` [B, T] (a 0-dim tensor, at least 1).

    norm_constant (only `seq-mean-token-sum-norm`): defaults to T, the mask's width; pass the configured
    maximum response length so every micro-batch and step uses the same constant. options: the mode's own.
    """
    return _apply(mode, torch.zeros(mask.shape), mask, norm_constant, options)[1]


def aggregate_loss(
    loss: Tensor,
    mask: Tensor,
    mode: str = "token-mean",
    *,
    denominator: Tensor | float | None = None,
    norm_constant: float | None = None,
    **options: Any,
) -> Tensor:
    """Aggregate per-token `loss` [B, T] over the real tokens of `mask` (see the module table).

    denominator: the mini-batch's `loss_denominator(...)` when `loss` is one micro-batch of it; None = this
    batch's own. norm_constant: see `loss_denominator` (give it there, or here when denominator is None).
    An empty batch aggregates to 0. options: the mode's own (its keyword-only parameters).
    """
    if denominator is not None and norm_constant is not None:
        raise ValueError("give norm_constant to loss_denominator, not together with a denominator")
    numerator, own = _apply(mode, loss, mask, norm_constant, options)
    return numerator / (own if denominator is None else denominator)
