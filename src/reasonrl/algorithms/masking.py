"""Reductions over the valid (unmasked) entries of a tensor, shared by the estimators, losses and metrics.

`mask` marks real response tokens (bool, or float 0/1); padding never enters a statistic.
"""

from __future__ import annotations

import torch
from torch import Tensor


def valid_mask(mask: Tensor, like: Tensor) -> Tensor:
    """`mask` as a bool tensor of `like`'s shape; a shape mismatch is an error naming both shapes."""
    if mask.shape != like.shape:
        raise ValueError(f"mask has shape {tuple(mask.shape)} but the values have shape {tuple(like.shape)}")
    return mask.bool()


def masked_sum(values: Tensor, valid: Tensor) -> Tensor:
    """Σ values over valid entries (padding may hold inf/nan; it is selected away, never multiplied)."""
    return torch.where(valid, values, torch.zeros_like(values)).sum()


def masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Mean over valid entries; 0 when there are none."""
    return masked_sum(values, valid) / valid.sum().clamp_min(1)


def masked_std(values: Tensor, valid: Tensor) -> Tensor:
    """Bessel-corrected standard deviation over valid entries, sqrt(Σ(v − mean)² / (n − 1)); 0 when n < 2."""
    count = valid.sum()
    mean = masked_mean(values, valid)
    squares = masked_sum((torch.where(valid, values, mean) - mean) ** 2, valid)
    return (squares / (count - 1).clamp_min(1)).sqrt()


def masked_max(values: Tensor, valid: Tensor) -> Tensor:
    """Largest valid entry; 0 when there are none."""
    lowest = torch.finfo(values.dtype).min
    best = torch.where(valid, values, torch.full_like(values, lowest)).max()
    return torch.where(valid.any(), best, torch.zeros_like(best))


def masked_min(values: Tensor, valid: Tensor) -> Tensor:
    """Smallest valid entry; 0 when there are none."""
    return -masked_max(-values, valid)


def masked_quantile(values: Tensor, valid: Tensor, q: float) -> Tensor:
    """The q-quantile of the valid entries (linear interpolation, as numpy); 0 when there are none."""
    picked = values[valid]
    return torch.quantile(picked, q) if picked.numel() else values.new_zeros(())


def has_holes(mask: Tensor) -> bool:
    """Whether some row has a masked position before a real one (a multi-turn episode's environment tokens),
    i.e. the mask is not right-padded."""
    valid = mask.bool()
    # A right-padded row never goes from masked back to real.
    return bool((valid[:, 1:] & ~valid[:, :-1]).any())


def packed_positions(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Where each row's real tokens are, packed to the left: `index` [B, T'] (T' = most real tokens in a row)
    holds, for the k-th real token of a row, its column, and `packed` [B, T'] marks the k that exist. Columns
    past a row's count point at its masked positions (distinct, so `unpack` never writes one twice)."""
    valid = mask.bool()
    counts = valid.sum(dim=1)
    # A stable sort on "is masked" lists every row's real columns first, in order.
    order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)
    width = max(int(counts.max()) if counts.numel() else 0, 1)
    index = order[:, :width]
    packed = torch.arange(width, device=mask.device)[None, :] < counts[:, None]
    return index, packed.to(mask.dtype)


def pack(values: Tensor, index: Tensor, packed: Tensor) -> Tensor:
    """[B, T] -> [B, T']: each row's values at its real tokens, left-aligned, zero past them."""
    return values.gather(1, index) * packed.to(values.dtype)


def unpack(values: Tensor, index: Tensor, packed: Tensor, width: int) -> Tensor:
    """[B, T'] -> [B, width]: `pack` undone, zero at every masked position."""
    out = torch.zeros(values.shape[0], width, dtype=values.dtype, device=values.device)
    return out.scatter(1, index, values * packed.to(values.dtype))
