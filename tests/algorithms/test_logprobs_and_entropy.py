"""token_logprobs and entropy_from_logits: exact values, temperature, float32, masked words, chunking."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from reasonrl.algorithms import entropy_from_logits, token_logprobs

close = partial(torch.testing.assert_close, rtol=1e-6, atol=1e-6)
P = [0.1, 0.2, 0.3, 0.4]
LOG_P = torch.tensor([math.log(p) for p in P])


def test_token_logprob_is_the_log_softmax_at_the_token() -> None:
    logits = (LOG_P + 3.0).expand(1, 4, 4)  # a shift does not change the softmax
    tokens = torch.tensor([[0, 1, 2, 3]])
    close(token_logprobs(logits, tokens), LOG_P[None, :])


def test_temperature_divides_the_logits() -> None:
    # softmax(ln k / 2) ∝ sqrt(k): token 2 has probability sqrt(3) / (1 + sqrt(2) + sqrt(3) + 2)
    logits = torch.log(torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]))
    expected = math.log(math.sqrt(3) / (1 + math.sqrt(2) + math.sqrt(3) + 2))
    close(token_logprobs(logits, torch.tensor([[2]]), temperature=2.0), torch.tensor([[expected]]))


def test_half_precision_logits_give_float32_and_masked_words_are_fine() -> None:
    logits = torch.tensor([[[0.0, -math.inf, 0.0, 0.0]]], dtype=torch.bfloat16)
    got = token_logprobs(logits, torch.tensor([[3]]))
    assert got.dtype == torch.float32
    close(got, torch.tensor([[math.log(1 / 3)]]))


def test_logprob_gradient_is_onehot_minus_softmax() -> None:
    logits = LOG_P.reshape(1, 1, 4).clone().requires_grad_(True)
    token_logprobs(logits, torch.tensor([[1]])).sum().backward()
    close(logits.grad, torch.tensor([[[-0.1, 0.8, -0.3, -0.4]]]))


def test_entropy_of_uniform_and_one_hot() -> None:
    uniform = torch.zeros(2, 1, 4)
    uniform[1] = 7.0  # any constant logits are uniform
    close(entropy_from_logits(uniform), torch.full((2, 1), math.log(4)))
    one_hot = torch.tensor([[[0.0, -math.inf, -math.inf, -math.inf], [1e4, 0.0, 0.0, 0.0]]])
    close(entropy_from_logits(one_hot), torch.zeros(1, 2))


def test_entropy_of_a_known_distribution_and_temperature() -> None:
    # H = −Σ p ln p for p = [0.1, 0.2, 0.3, 0.4]
    expected = -sum(p * math.log(p) for p in P)  # 1.2798542
    close(entropy_from_logits(LOG_P.reshape(1, 1, 4)), torch.tensor([[expected]]))
    close(entropy_from_logits(2 * LOG_P.reshape(1, 1, 4), temperature=2.0), torch.tensor([[expected]]))


def test_entropy_gradient_is_finite_with_masked_words() -> None:
    logits = torch.tensor([[[0.5, -math.inf, 0.0, 1.0]]], requires_grad=True)
    entropy_from_logits(logits).sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[0, 0, 1] == 0


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5])
def test_chunking_changes_neither_values_nor_gradients(chunk_size: int) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=generator)
    tokens = torch.randint(0, 7, (2, 5), generator=generator)
    weights = torch.randn(2, 5, generator=generator)
    results = []
    for chunk in (None, chunk_size):
        leaf = logits.clone().requires_grad_(True)
        logp = token_logprobs(leaf, tokens, temperature=0.7, chunk_size=chunk)
        entropy = entropy_from_logits(leaf, temperature=0.7, chunk_size=chunk)
        ((logp + entropy) * weights).sum().backward()
        results.append((logp.detach(), entropy.detach(), leaf.grad))
    for whole, chunked in zip(*results, strict=True):
        torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
    with torch.no_grad():
        close(token_logprobs(logits, tokens, chunk_size=chunk_size), token_logprobs(logits, tokens))


def test_errors_are_named() -> None:
    with pytest.raises(ValueError, match="temperature must be positive"):
        token_logprobs(torch.zeros(1, 1, 2), torch.zeros(1, 1, dtype=torch.long), temperature=0.0)
    with pytest.raises(ValueError, match="plus a vocabulary dim"):
        token_logprobs(torch.zeros(1, 2, 3), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature must be positive"):
        entropy_from_logits(torch.zeros(1, 1, 2), temperature=-1.0)
    with pytest.raises(ValueError, match="chunk_size must be a positive"):
        entropy_from_logits(torch.zeros(1, 3, 2), chunk_size=0)
