"""What every optimizer step of the learner shares, for the policy and the critic alike: summing micro-batch
metrics, and stepping only on a finite loss and gradient."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch


def add_metrics(totals: dict[str, float], metrics: Mapping[str, float]) -> None:
    """Fold one micro-batch's metrics into `totals`: means arrive pre-weighted by their token share (so they
    add up); extremes (names ending in _max / _min) combine by max / min."""
    for name, value in metrics.items():
        if name.endswith("_max"):
            totals[name] = max(totals.get(name, value), value)
        elif name.endswith("_min"):
            totals[name] = min(totals.get(name, value), value)
        else:
            totals[name] = totals.get(name, 0.0) + value


def apply_gradients(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    parameters: Sequence[torch.nn.Parameter],
    grad_clip: float,
    loss: float,
) -> tuple[float, bool]:
    """Clip the gradient norm (grad_clip 0 = off) and step, unless the loss or the norm is not finite, in
    which case the gradient is dropped and nothing moves. Returns (gradient norm, whether it stepped). Under
    FSDP2 the gradients are sharded and the norm comes back as a replicated DTensor: every rank reads the
    same whole-model norm, so every rank makes the same decision."""
    total = torch.nn.utils.clip_grad_norm_(parameters, grad_clip if grad_clip > 0 else math.inf)
    norm = float(total.full_tensor() if hasattr(total, "full_tensor") else total)
    if math.isfinite(norm) and math.isfinite(loss):
        optimizer.step()
        scheduler.step()
        return norm, True
    optimizer.zero_grad(set_to_none=True)
    return norm, False
