"""GAE and the "gae" advantage on hand-computed batches (float64)."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from reasonrl.algorithms import ADVANTAGES, AdvantageInputs, gae, gae_returns

close = partial(torch.testing.assert_close, rtol=1e-12, atol=1e-12)
F64 = torch.float64

# Row 0 has 3 real tokens, row 1 has 2 (its third entry is padding and holds garbage on purpose).
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=F64)
VALUES = torch.tensor([[0.5, 0.25, 0.75], [0.1, 0.2, 9.0]], dtype=F64)
TOKEN_REWARDS = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 5.0]], dtype=F64)


def test_gae_matches_the_recursion_by_hand() -> None:
    # gamma 0.9, lambda 0.5, so gamma*lambda = 0.45; V after the last real token is 0 (terminal).
    # row 0: deltas = [0.9*0.25 - 0.5, 0.9*0.75 - 0.25, 1 - 0.75] = [-0.275, 0.425, 0.25]
    #        A2 = 0.25, A1 = 0.425 + 0.45*0.25 = 0.5375, A0 = -0.275 + 0.45*0.5375 = -0.033125
    # row 1: deltas = [0.9*0.2 - 0.1, 2 - 0.2] = [0.08, 1.8];  A1 = 1.8, A0 = 0.08 + 0.45*1.8 = 0.89
    advantages, returns = gae(TOKEN_REWARDS, VALUES, MASK, gamma=0.9, lam=0.5)
    close(advantages, torch.tensor([[-0.033125, 0.5375, 0.25], [0.89, 1.8, 0.0]], dtype=F64))
    # returns = A + V on real tokens
    close(returns, torch.tensor([[0.466875, 0.7875, 1.0], [0.99, 2.0, 0.0]], dtype=F64))


def test_lambda_one_is_the_return_minus_the_value_and_lambda_zero_the_td_error() -> None:
    advantages, returns = gae(TOKEN_REWARDS, VALUES, MASK, gamma=1.0, lam=1.0)
    close(advantages, torch.tensor([[0.5, 0.75, 0.25], [1.9, 1.8, 0.0]], dtype=F64))
    close(returns, torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 0.0]], dtype=F64))
    td, _ = gae(TOKEN_REWARDS, VALUES, MASK, gamma=0.9, lam=0.0)
    close(td, torch.tensor([[-0.275, 0.425, 0.25], [0.08, 1.8, 0.0]], dtype=F64))


def test_the_gae_estimator_puts_the_outcome_on_the_last_token_and_whitens() -> None:
    inputs = AdvantageInputs(
        rewards=torch.tensor([1.0, 2.0], dtype=F64), mask=MASK, group_size=1, values=VALUES, gamma=0.9, lam=0.5
    )
    raw = torch.tensor([-0.033125, 0.5375, 0.25, 0.89, 1.8], dtype=F64)
    whitened = (raw - raw.mean()) / (raw.std() + 1e-6)
    expected = torch.zeros(2, 3, dtype=F64)
    expected[0], expected[1, :2] = whitened[:3], whitened[3:]
    close(ADVANTAGES.get("gae")(inputs), expected)
    close(gae_returns(inputs), torch.tensor([[0.466875, 0.7875, 1.0], [0.99, 2.0, 0.0]], dtype=F64))


def test_kl_in_the_reward_is_taken_out_per_token() -> None:
    kl = torch.tensor([[0.1, 0.0, 0.2], [0.0, 0.5, 7.0]], dtype=F64)
    inputs = AdvantageInputs(
        rewards=torch.tensor([1.0, 2.0], dtype=F64),
        mask=MASK,
        group_size=2,
        values=torch.zeros(2, 3, dtype=F64),
        kl_penalty=kl,
        gamma=1.0,
        lam=1.0,
    )
    # token rewards row 0: [-0.1, 0, 1 - 0.2], row 1: [0, 2 - 0.5]; V = 0, so returns are reverse sums
    close(gae_returns(inputs), torch.tensor([[0.7, 0.8, 0.8], [1.5, 1.5, 0.0]], dtype=F64))


def test_gae_rejects_missing_values_and_holes_in_the_mask() -> None:
    inputs = AdvantageInputs(rewards=torch.tensor([1.0, 2.0], dtype=F64), mask=MASK, group_size=1)
    with pytest.raises(ValueError, match="needs the critic's values"):
        ADVANTAGES.get("gae")(inputs)
    holed = torch.tensor([[1, 0, 1], [1, 1, 0]], dtype=F64)
    with pytest.raises(ValueError, match="right-padded"):
        gae(TOKEN_REWARDS, VALUES, holed, gamma=1.0, lam=1.0)
    with pytest.raises(ValueError, match="values must have the mask's shape"):
        AdvantageInputs(rewards=torch.tensor([1.0, 2.0]), mask=MASK, group_size=1, values=torch.zeros(2, 2))
