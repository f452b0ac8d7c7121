"""Speculative reuse of earlier responses (SPEC-RL, Liu et al., arXiv 2509.23232): which tokens of a cached
response (the draft) the current policy keeps, and what it samples where it stops keeping them.

A draft token y_i, sampled by an older policy q, is accepted when u_i <= min(1, l * p(y_i) / q(y_i)) with
u_i ~ U(0, 1) and the current policy p; the draft is kept up to its first rejected token (the cut). Lenience
l > 1 keeps more (SPEC-RL's default for GRPO is e^0.5); l = 1 is the speculative-sampling rule, which together
with resampling the cut token from the residual norm(max(0, p - q)) makes the result follow p exactly
(Leviathan et al., arXiv 2211.17192, Theorem 1). SPEC-RL samples the cut token from p instead, which is not
exact even at l = 1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def first_rejections(
    new_logprobs: Tensor, draft_logprobs: Tensor, mask: Tensor, uniforms: Tensor, *, lenience: float
) -> Tensor:
    """The cut of each draft: the index of its first rejected token, or its length when every token is kept.

    All inputs are [B, T] (right-padded drafts, `mask` marking real tokens); token i of row b is accepted when
    log u <= log l + log p - log q, the acceptance rule in log space (no overflow for tiny q). Returns [B] long.
    """
    if lenience <= 0:
        raise ValueError(f"lenience must be > 0, got {lenience}")
    shapes = {tuple(t.shape) for t in (new_logprobs, draft_logprobs, mask, uniforms)}
    if len(shapes) != 1 or new_logprobs.dim() != 2:
        raise ValueError(f"new_logprobs, draft_logprobs, mask and uniforms must share one [B, T] shape, got {shapes}")
    valid = mask.bool()
    log_ratio = math.log(lenience) + new_logprobs.double() - draft_logprobs.double()
    rejected = valid & (uniforms.double().log() > log_ratio)
    lengths = valid.sum(dim=-1)
    first = rejected.int().argmax(dim=-1)  # argmax returns the first maximum
    return torch.where(rejected.any(dim=-1), first, lengths)


def residual_distribution(target: Tensor, draft: Tensor) -> Tensor:
    """norm(max(0, p - q)) over the last dimension: what the cut token is drawn from so that, with the l = 1 rule,
    the token there follows p. Where p <= q everywhere (p == q), no draft token is ever rejected; p is returned
    so the result is still a distribution."""
    if target.shape != draft.shape:
        raise ValueError(f"target and draft distributions must share a shape, got {target.shape} and {draft.shape}")
    residual = (target.double() - draft.double()).clamp(min=0)
    total = residual.sum(dim=-1, keepdim=True)
    return torch.where(total > 0, residual / total.clamp(min=torch.finfo(torch.float64).tiny), target.double())
