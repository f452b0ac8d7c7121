"""The clipped value loss and explained variance on hand-computed tensors."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from reasonrl.algorithms import explained_variance, value_loss

close = partial(torch.testing.assert_close, rtol=1e-12, atol=1e-12)
F64 = torch.float64

# token 0: clipped branch wins (old 0.5 -> band [0.3, 0.7], V^clip = 0.7, (0.7 - 2)^2 = 1.69 > (1 - 2)^2 = 1)
# token 1: V inside the band, both branches equal (1.0)
# token 2: V outside the band but the unclipped term is larger ((1 - 0)^2 = 1 > 0.2^2 = 0.04)
# token 3: padding with garbage
VALUES = torch.tensor([[1.0, 2.0, 1.0, 7.0]], dtype=F64)
OLD = torch.tensor([[0.5, 2.1, 0.0, 0.0]], dtype=F64)
RETURNS = torch.tensor([[2.0, 1.0, 0.0, 3.0]], dtype=F64)
MASK = torch.tensor([[1, 1, 1, 0]], dtype=F64)


def test_clipped_value_loss_values_gradients_and_metrics() -> None:
    values = VALUES.clone().requires_grad_(True)
    loss, metrics = value_loss(values, OLD, RETURNS, MASK, clip=0.2)
    close(loss, torch.tensor([[0.845, 0.5, 0.5, 0.0]], dtype=F64))
    loss.sum().backward()
    # the clipped branch holds V^clip constant where it wins: no gradient; elsewhere (V - R)
    close(values.grad, torch.tensor([[0.0, 1.0, 1.0, 0.0]], dtype=F64))
    close(metrics["clip_frac"], torch.tensor(1 / 3, dtype=F64))
    close(metrics["error_mean"], torch.tensor(1 / 3, dtype=F64))


def test_unclipped_value_loss_is_half_the_squared_error() -> None:
    values = VALUES.clone().requires_grad_(True)
    loss, metrics = value_loss(values, OLD, RETURNS, MASK, clip=None)
    close(loss, torch.tensor([[0.5, 0.5, 0.5, 0.0]], dtype=F64))
    loss.sum().backward()
    close(values.grad, torch.tensor([[-1.0, 1.0, 1.0, 0.0]], dtype=F64))
    assert float(metrics["clip_frac"]) == 0.0


def test_explained_variance_by_hand() -> None:
    returns = torch.tensor([[1.0, 2.0, 3.0, 100.0]], dtype=F64)
    values = torch.tensor([[1.0, 2.0, 2.0, -50.0]], dtype=F64)
    # R - V = [0, 0, 1]: sum of squared deviations 2/3; R: 2. EV = 1 - (2/3)/2
    close(explained_variance(values, returns, MASK), torch.tensor(2 / 3, dtype=F64))
    close(explained_variance(returns, returns, MASK), torch.tensor(1.0, dtype=F64))
    constant = torch.ones(1, 4, dtype=F64)
    assert float(explained_variance(values, constant, MASK)) == 0.0


def test_bad_arguments_are_errors() -> None:
    with pytest.raises(ValueError, match="clip must be positive"):
        value_loss(VALUES, OLD, RETURNS, MASK, clip=0.0)
    with pytest.raises(ValueError, match="returns has shape"):
        value_loss(VALUES, OLD, RETURNS[:, :2], MASK)
