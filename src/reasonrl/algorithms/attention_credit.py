"""Attention-guided credit assignment (Li et al., "preplan-and-anchor rhythm", arXiv 2510.13554).

From one sequence's attention maps A^(h) [H, N, N] (heads of a few middle layers, rows = queries), heads are
split by their mean backward distance d_h = mean_{t in R} Σ_{s<=t} A^(h)_{t,s}·(t − s) over the response rows
R: the `head_share` most local heads give Ā_loc, the most global ones Ā_glob. Per token:

- WAAD_t = Σ_{s<=t} Ā_loc[t, s]·min(t − s, W): how far back a token looks; a jump
  Δ_t = |WAAD_t − WAAD_{t+1}| marks where a new chunk is planned (preplan tokens: top Δ).
- FAI_s = mean_{t in R, s+lo <= t <= s+hi} Ā_glob[t, s]: how much later tokens lean on s (anchor tokens: top
  FAI). A token with no response token in that window has no FAI and is never an anchor.

The credit weight γ_t multiplies the advantage (both signs), γ = 1 + (a − 1)·[t selected] with a = 1.5 on the
top 40% of each response (preplan or anchor strategy). The coupled strategy moves a share α of the bonus of a
"locally dominated" anchor (WAAD at or below its response's mean, with a preplan token among the k tokens
before it) to that preplan token: γ = 1 + (a−1)[anchor not dominated] + (1−α)(a−1)[dominated anchor]
+ α(a−1)[preplan token of a dominated anchor]. The paper leaves its thresholds τ_waad and τ_Δ unspecified;
the response mean and preplan membership stand in for them here.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Strategy = Literal["preplan", "anchor", "coupled"]
STRATEGIES: tuple[Strategy, ...] = ("preplan", "anchor", "coupled")


def _offsets(size: int) -> Tensor:
    """[N, N] float: t − s below and on the diagonal, 0 above it (future keys never count)."""
    index = torch.arange(size, dtype=torch.float32)
    return (index[:, None] - index[None, :]).clamp_min(0)


def head_distances(attention: Tensor, start: int) -> Tensor:
    """[H]: each head's mean backward attention distance over the response rows `start`..N−1."""
    if attention.dim() != 3 or attention.shape[1] != attention.shape[2]:
        raise ValueError(f"attention must have shape [heads, N, N], got {tuple(attention.shape)}")
    if not 0 <= start < attention.shape[1]:
        raise ValueError(f"the response must start inside the sequence of {attention.shape[1]}, got {start}")
    rows = attention[:, start:, :].float()
    return (rows * _offsets(attention.shape[1])[start:]).sum(dim=-1).mean(dim=-1)


def head_groups(distances: Tensor, share: float) -> tuple[Tensor, Tensor]:
    """(local, global) head indices: the max(1, floor(share·H)) heads with the smallest and with the largest
    distance; ties go to the earlier head."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"head share must be in (0, 1], got {share}")
    count = max(1, int(share * distances.numel()))
    local = torch.sort(distances, stable=True).indices[:count]
    far = torch.sort(-distances, stable=True).indices[:count]
    return local, far


def waad(attention: Tensor, window: int) -> Tensor:
    """[N]: Windowed Average Attention Distance of every row of one [N, N] attention map."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return (attention.float() * _offsets(attention.shape[0]).clamp_max(window)).sum(dim=-1)


def fai(attention: Tensor, start: int, near: int, far: int) -> tuple[Tensor, Tensor]:
    """([n] FAI, [n] bool has-a-window) of the response tokens `start`..N−1 of one [N, N] attention map.

    FAI_s averages the attention that response rows t with s + near <= t <= s + far pay to key s; 0 where
    no such row exists (the last `near` tokens of a response).
    """
    if not 1 <= near <= far:
        raise ValueError(f"need 1 <= near <= far, got near={near}, far={far}")
    size = attention.shape[0]
    gap = torch.arange(size)[:, None] - torch.arange(size)[None, :]  # t − s
    rows = torch.arange(size)[:, None] >= start
    window = (gap >= near) & (gap <= far) & rows
    counts = window.sum(dim=0)
    totals = torch.where(window, attention.float(), 0.0).sum(dim=0)
    values = totals / counts.clamp_min(1)
    return values[start:], counts[start:] > 0


def waad_jumps(waad_values: Tensor) -> tuple[Tensor, Tensor]:
    """([n] Δ_t = |WAAD_t − WAAD_{t+1}|, [n] bool defined): the last token has no successor, so no Δ."""
    jumps = torch.zeros_like(waad_values)
    jumps[:-1] = (waad_values[:-1] - waad_values[1:]).abs()
    defined = torch.ones_like(waad_values, dtype=torch.bool)
    defined[-1:] = False
    return jumps, defined


def top_tokens(scores: Tensor, eligible: Tensor, share: float) -> Tensor:
    """Bool [n]: the floor(share · #eligible) eligible tokens with the highest score; ties to the earlier token."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"top share must be in [0, 1], got {share}")
    positions = eligible.nonzero().reshape(-1)
    picked = torch.zeros_like(eligible, dtype=torch.bool)
    count = int(share * positions.numel())
    if count:
        order = torch.sort(-scores[positions], stable=True).indices[:count]
        picked[positions[order]] = True
    return picked


def coupled_bonus(
    anchors: Tensor, preplan: Tensor, jumps: Tensor, waad_values: Tensor, *, alpha: float, window: int
) -> Tensor:
    """[n] bonus share per token under the coupled rhythm (multiply by a − 1 for the weight's excess over 1).

    An anchor t is locally dominated when WAAD_t <= the response's mean WAAD and a preplan token lies in
    t−window..t−1; it keeps 1 − α of its bonus and its preplan token (the one with the largest Δ there, the
    latest on ties) receives α, once however many anchors it introduces.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"coupling alpha must be in [0, 1], got {alpha}")
    bonus = anchors.float()
    introduced = torch.zeros_like(anchors, dtype=torch.bool)
    mean = waad_values.mean()
    for t in anchors.nonzero().reshape(-1).tolist():
        before = torch.arange(max(0, t - window), t)
        candidates = before[preplan[before]]
        if waad_values[t] > mean or candidates.numel() == 0:
            continue
        bonus[t] = 1.0 - alpha
        best = jumps[candidates]
        introduced[candidates[(best == best.max()).nonzero().reshape(-1)[-1]]] = True
    return bonus + alpha * introduced.float()


def credit_weights(
    attention: Tensor,
    start: int,
    *,
    strategy: Strategy = "coupled",
    window: int = 10,
    future_near: int = 10,
    future_far: int = 100,
    head_share: float = 0.3,
    top_share: float = 0.4,
    amplification: float = 1.5,
    alpha: float = 0.5,
    coupling_window: int = 3,
) -> Tensor:
    """[n] credit weights γ of the response tokens `start`..N−1 of one sequence, from its probe-layer
    attention maps [H, N, N] (all probe layers' heads stacked)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    local, far = head_groups(head_distances(attention, start), head_share)
    local_waad = waad(attention[local].float().mean(dim=0), window)[start:]
    jumps, defined = waad_jumps(local_waad)
    preplan = top_tokens(jumps, defined, top_share)
    if strategy == "preplan":
        bonus = preplan.float()
    else:
        influence, has_window = fai(attention[far].float().mean(dim=0), start, future_near, future_far)
        anchors = top_tokens(influence, has_window, top_share)
        bonus = (
            anchors.float()
            if strategy == "anchor"
            else coupled_bonus(anchors, preplan, jumps, local_waad, alpha=alpha, window=coupling_window)
        )
    return 1.0 + (amplification - 1.0) * bonus
