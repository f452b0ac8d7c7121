"""DAPO's group filter: which groups have differing rewards, and which rows those groups own."""

from __future__ import annotations

import pytest
import torch

from reasonrl.algorithms import informative_groups, kept_rows


def test_groups_whose_rewards_all_agree_are_uninformative() -> None:
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5001, 1.0, 1.0, 1.0, 1.0])
    assert informative_groups(rewards, 4).tolist() == [True, False, True, False]


def test_tolerance_treats_near_equal_rewards_as_equal() -> None:
    rewards = torch.tensor([0.5, 0.5, 0.5, 0.5001, 0.0, 1.0])
    assert informative_groups(rewards, 2, tolerance=1e-3).tolist() == [False, False, True]
    assert informative_groups(rewards, 2).tolist() == [False, True, True]


def test_a_nan_reward_keeps_its_group_and_single_responses_never_count() -> None:
    assert informative_groups(torch.tensor([float("nan"), 1.0, 2.0, 2.0]), 2).tolist() == [True, False]
    assert informative_groups(torch.tensor([0.0, 1.0, 2.0]), 1).tolist() == [False, False, False]


def test_kept_rows_are_the_rows_of_the_kept_groups_in_order() -> None:
    assert kept_rows(torch.tensor([True, False, True]), 2).tolist() == [0, 1, 4, 5]
    assert kept_rows(torch.tensor([False, False]), 3).tolist() == []


def test_bad_shapes_are_errors() -> None:
    with pytest.raises(ValueError, match="group_size 3 must be >= 1 and divide the 4 rewards"):
        informative_groups(torch.zeros(4), 3)
    with pytest.raises(ValueError, match=r"rewards must have shape \[B\]"):
        informative_groups(torch.zeros(2, 2), 2)
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        informative_groups(torch.zeros(4), 2, tolerance=-1.0)
    with pytest.raises(ValueError, match="keep must be a 1-D bool tensor"):
        kept_rows(torch.tensor([1, 0]), 2)
