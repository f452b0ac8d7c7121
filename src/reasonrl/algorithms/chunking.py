"""Apply a per-position function of logits [..., T, V] in slices along T, to bound peak memory.

A float32 copy of the logits (or their softmax) for a whole batch is B·T·V·4 bytes — gigabytes for a
150k-word vocabulary. Slicing T keeps one slice's temporaries alive at a time; when autograd is recording,
each slice is checkpointed (recomputed in backward) so the saved tensors are the input slices only.
Positions are independent, so the result equals the unsliced one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint


def map_time_chunks(fn: Callable[..., Tensor], logits: Tensor, *per_position: Tensor, chunk_size: int | None) -> Tensor:
    """fn(logits[..., s, :], *(x[..., s] for x in per_position)) for slices s of `chunk_size` positions.

    `fn` maps logits [..., t, V] (and per-position tensors [..., t]) to [..., t]; the slices are
    concatenated along the last dim. chunk_size None (or ≥ T) = one call on the whole tensor.
    """
    length = logits.shape[-2]
    if chunk_size is None or chunk_size >= length:
        return fn(logits, *per_position)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of positions, got {chunk_size}")
    recompute = torch.is_grad_enabled() and logits.requires_grad
    pieces = []
    for start in range(0, length, chunk_size):
        width = min(chunk_size, length - start)
        args = (logits.narrow(-2, start, width), *(x.narrow(-1, start, width) for x in per_position))
        pieces.append(checkpoint(fn, *args, use_reentrant=False) if recompute else fn(*args))
    return torch.cat(pieces, dim=-1)
