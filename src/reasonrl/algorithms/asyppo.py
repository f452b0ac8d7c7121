"""AsyPPO's mini-critic ensemble (Liu et al., "Asymmetric PPO", arXiv 2510.01656): data shards, the ensemble
value and its disagreement, and the two token masks the disagreement drives.

K small critics each train on a disjoint share of every prompt's responses; the ensemble value is their mean
and σ_t, the standard deviation across critics of V_m(s_t), says how much they disagree. Tokens where the
critics agree most carry little signal: their advantage is zeroed (I^A). Tokens where they disagree most
are noisy: they are left out of the entropy bonus (I^H). Objective, per token:
I^A_t · clipped-surrogate(Ā_t) + β · I^H_t · H_t. The paper's defaults: K = 2, 20% and 20%.
"""

from __future__ import annotations

import torch
from torch import Tensor

from reasonrl.algorithms.masking import valid_mask


def critic_shards(rows: int, group_size: int, count: int) -> Tensor:
    """[rows] long: which critic trains on each response — its index within its group, modulo `count`.

    Every critic sees every prompt but different responses (AsyPPO's group-level non-overlapping division);
    responses j, j + K, j + 2K, ... of each group go to critic j. Needs group_size >= count.
    """
    if count < 1 or group_size < count:
        raise ValueError(f"need 1 <= count <= group_size (each critic needs a response per group), got {count}")
    if rows % group_size:
        raise ValueError(f"{rows} rows are not whole groups of {group_size}")
    return (torch.arange(rows) % group_size) % count


def ensemble_values(values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(mean, std) over critics of values [K, B, T], each [B, T] and zero on padding.

    std is Bessel-corrected across the K critics (0 when K = 1): with K = 2 it is |V_1 − V_2| / √2.
    """
    if values.dim() != 3:
        raise ValueError(f"values must have shape [K, B, T], got {tuple(values.shape)}")
    valid = valid_mask(mask, values[0])
    mean = values.mean(dim=0)
    std = values.std(dim=0) if values.shape[0] > 1 else torch.zeros_like(mean)
    return torch.where(valid, mean, 0.0), torch.where(valid, std, 0.0)


def _extreme_tokens(spread: Tensor, valid: Tensor, share: float, *, lowest: bool) -> Tensor:
    """Bool [B, T]: the floor(share · N) real tokens with the lowest (or highest) spread; ties go to the
    earlier token in row-major order, so the choice is deterministic."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"share must be in [0, 1), got {share}")
    positions = valid.reshape(-1).nonzero().reshape(-1)
    count = int(share * positions.numel())
    picked = torch.zeros(valid.numel(), dtype=torch.bool, device=valid.device)
    if count:
        keys = spread.reshape(-1)[positions]
        order = torch.sort(keys if lowest else -keys, stable=True).indices[:count]
        picked[positions[order]] = True
    return picked.reshape(valid.shape)


def disagreement_masks(
    spread: Tensor, mask: Tensor, *, advantage_low: float, entropy_high: float
) -> tuple[Tensor, Tensor]:
    """(advantage_keep, entropy_keep), float [B, T] of 0/1, zero on padding.

    advantage_keep is 0 on the floor(advantage_low · N) real tokens with the lowest critic disagreement σ
    (I^A); entropy_keep is 0 on the floor(entropy_high · N) tokens with the highest σ (I^H); N counts the
    real tokens of the batch.
    """
    valid = valid_mask(mask, spread)
    advantage = valid & ~_extreme_tokens(spread, valid, advantage_low, lowest=True)
    entropy = valid & ~_extreme_tokens(spread, valid, entropy_high, lowest=False)
    return advantage.to(spread.dtype), entropy.to(spread.dtype)
