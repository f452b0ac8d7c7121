"""Log-probabilities of given tokens: the one definition the learner and the engines share.

A log-prob in reasonrl is "the log-probability of the sampled token under softmax(logits / temperature)",
computed in float32 as log_softmax(float32(logits) / temperature) gathered at the token.
"""

from __future__ import annotations

import torch
from torch import Tensor

from reasonrl.algorithms.chunking import map_time_chunks


def token_logprobs(
    logits: Tensor, tokens: Tensor, temperature: float = 1.0, *, chunk_size: int | None = None
) -> Tensor:
    """log softmax(logits / temperature)[token] per position, float32, shape [..., T].

    logits [..., T, V] must already be aligned with tokens [..., T]: logits[..., t, :] is the distribution
    tokens[..., t] was drawn from (for a causal LM, the model output at position t − 1). The logits are cast
    to float32 before dividing by the temperature. chunk_size slices T to bound memory (see `chunking`);
    it does not change the result.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive to define log-probabilities, got {temperature}")
    if logits.shape[:-1] != tokens.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} must be tokens' shape {tuple(tokens.shape)} plus a vocabulary dim"
        )

    def gather(chunk: Tensor, chunk_tokens: Tensor) -> Tensor:
        logp = torch.log_softmax(chunk.float() / temperature, dim=-1)
        return logp.gather(-1, chunk_tokens.long().unsqueeze(-1)).squeeze(-1)

    return map_time_chunks(gather, logits, tokens, chunk_size=chunk_size)
