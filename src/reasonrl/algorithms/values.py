"""Critic losses and diagnostics: the clipped value loss of PPO and the explained variance of the values."""

from __future__ import annotations

import torch
from torch import Tensor

from reasonrl.algorithms.masking import masked_mean, masked_sum, valid_mask


def value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, *, clip: float | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-token value loss [B, T] (zero on padding) and metrics.

    Unclipped (clip None): L_t = ½ (V_t − R_t)². Clipped (PPO2 baselines, as verl `compute_value_loss`,
    ROLL's CriticWorker): V^clip_t = V_old,t + clip(V_t − V_old,t, −ε, ε) and
    L_t = ½ max((V_t − R_t)², (V^clip_t − R_t)²), so a step cannot move a value far from the one the
    advantages were computed with by lowering the loss. Gradient: (V − R)·∇V where the unclipped term is at
    least the clipped one, (V^clip − R)·∇V^clip otherwise (zero when V is outside the band).
    Metrics (0-dim, over real tokens): clip_frac (share of tokens where the clipped term is strictly larger,
    so it decides the loss) and error_mean (mean of V − R).
    """
    valid = valid_mask(mask, values)
    for name, tensor in (("old_values", old_values), ("returns", returns)):
        if tensor.shape != values.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, values {tuple(values.shape)}")
    if clip is not None and clip <= 0:
        raise ValueError(f"clip must be positive (or None for no clipping), got {clip}")
    returns = torch.where(valid, returns, 0.0)
    unclipped = (values - returns) ** 2
    if clip is None:
        loss, clipped_wins = unclipped, torch.zeros_like(valid)
    else:
        old = torch.where(valid, old_values, 0.0)
        clipped = (old + (values - old).clamp(-clip, clip) - returns) ** 2
        loss, clipped_wins = torch.maximum(unclipped, clipped), clipped.detach() > unclipped.detach()
    metrics = {
        "clip_frac": masked_mean(clipped_wins.to(values.dtype), valid),
        "error_mean": masked_mean((values - returns).detach(), valid),
    }
    return torch.where(valid, 0.5 * loss, 0.0), metrics


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> Tensor:
    """1 − Var(R − V) / Var(R) over the real tokens (0-dim): 1 = perfect values, 0 = no better than the mean
    return, negative = worse. Reported as 0 when the returns do not vary (it is undefined there)."""
    valid = valid_mask(mask, values)
    if returns.shape != values.shape:
        raise ValueError(f"returns {tuple(returns.shape)} and values {tuple(values.shape)} differ in shape")

    def variance(x: Tensor) -> Tensor:
        return masked_sum((x - masked_mean(x, valid)) ** 2, valid)

    total = variance(returns)
    if total <= 0:
        return torch.zeros((), dtype=values.dtype)
    return 1 - variance(returns - values) / total
