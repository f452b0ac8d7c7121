"""Per-token entropy of the policy's next-token distribution, from logits."""

from __future__ import annotations

import torch
from torch import Tensor

from reasonrl.algorithms.chunking import map_time_chunks


def entropy_from_logits(logits: Tensor, temperature: float = 1.0, *, chunk_size: int | None = None) -> Tensor:
    """H = −Σ_v p_v log p_v of p = softmax(logits / temperature), float32, shape [..., T].

    Computed stably as H = logsumexp(z) − Σ_v p_v z_v with z = float32(logits) / temperature shifted by its
    maximum (H is shift-invariant; the shift avoids cancelling two large numbers, and no log of a zero
    probability is taken); −inf logits (masked words) become the lowest finite float, so they contribute
    p = 0 and no nan. chunk_size slices T to bound memory (see `chunking`) without changing the
    result. The entropy bonus (Williams & Peng 1991; PPO, arXiv 1707.06347) is −coef · aggregate(H).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")

    def entropy(chunk: Tensor) -> Tensor:
        z = chunk.float() / temperature
        z = (z - z.amax(dim=-1, keepdim=True).detach()).clamp_min(torch.finfo(z.dtype).min)
        probs = torch.softmax(z, dim=-1)
        return torch.logsumexp(z, dim=-1) - (probs * z).sum(dim=-1)

    return map_time_chunks(entropy, logits, chunk_size=chunk_size)
