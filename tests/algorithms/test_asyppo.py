"""AsyPPO's mini-critic pieces on hand-computed tensors: shards, ensemble mean/std, disagreement masks."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algorithms import critic_shards, disagreement_masks, ensemble_values


def test_each_critic_gets_its_own_responses_of_every_group() -> None:
    assert critic_shards(8, 4, 2).tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert critic_shards(6, 3, 2).tolist() == [0, 1, 0, 0, 1, 0]
    assert critic_shards(4, 2, 1).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="need 1 <= count <= group_size"):
        critic_shards(4, 2, 3)
    with pytest.raises(ValueError, match="not whole groups"):
        critic_shards(5, 2, 2)


def test_ensemble_mean_and_std_across_critics() -> None:
    values = torch.tensor([[[1.0, 2.0, 9.0]], [[3.0, 2.0, -9.0]]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    mean, std = ensemble_values(values, mask)
    torch.testing.assert_close(mean, torch.tensor([[2.0, 2.0, 0.0]]))
    torch.testing.assert_close(std, torch.tensor([[math.sqrt(2.0), 0.0, 0.0]]))  # |3 - 1| / sqrt(2)
    mean, std = ensemble_values(values[:1], mask)
    torch.testing.assert_close(mean, torch.tensor([[1.0, 2.0, 0.0]]))
    assert torch.equal(std, torch.zeros(1, 3))


def test_masks_pick_the_lowest_and_highest_disagreement_among_real_tokens() -> None:
    spread = torch.tensor([[0.5, 0.1, 0.9, 0.3], [0.2, 0.7, 5.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])  # 6 real tokens; 5.0 and 0.0 are padding
    # floor(0.34 * 6) = 2 lowest: 0.1 and 0.2; floor(0.2 * 6) = 1 highest: 0.9
    advantage, entropy = disagreement_masks(spread, mask, advantage_low=0.34, entropy_high=0.2)
    torch.testing.assert_close(advantage, torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]]))
    torch.testing.assert_close(entropy, torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]]))
    keep_all, _ = disagreement_masks(spread, mask, advantage_low=0.0, entropy_high=0.0)
    torch.testing.assert_close(keep_all, mask)


def test_ties_go_to_the_earlier_token() -> None:
    advantage, entropy = disagreement_masks(torch.zeros(2, 2), torch.ones(2, 2), advantage_low=0.5, entropy_high=0.25)
    torch.testing.assert_close(advantage, torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    torch.testing.assert_close(entropy, torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"share must be in \[0, 1\)"):
        disagreement_masks(torch.zeros(2, 2), torch.ones(2, 2), advantage_low=1.0, entropy_high=0.0)
