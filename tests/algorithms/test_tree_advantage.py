"""TreePO's tree advantage on a hand-built tree: subtree-relative scores by depth, size-weighted or averaged, then
whitened over the batch's tokens."""

from __future__ import annotations

import pytest
import torch

from reasonrl.algorithms.advantages import ADVANTAGES, AdvantageInputs, tree_relative_rewards

# One group of four leaves: two root branches, each split in two at the second segment.
PATHS = ("0/0", "0/1", "1/0", "1/1")
REWARDS = torch.tensor([1.0, 0.0, 1.0, 1.0])


def test_subtree_relative_scores_by_depth() -> None:
    # Depth 0 (all four, mean 0.75): [0.25, -0.75, 0.25, 0.25]. Depth 1: subtree "0" (mean 0.5): [0.5, -0.5];
    # subtree "1" (mean 1): [0, 0]. Depth 2 is each leaf alone: skipped.
    size = tree_relative_rewards(REWARDS, PATHS, 4, "size")  # weights 4 and 2
    assert size.tolist() == pytest.approx([(4 * 0.25 + 2 * 0.5) / 6, (4 * -0.75 + 2 * -0.5) / 6, 1 / 6, 1 / 6])
    average = tree_relative_rewards(REWARDS, PATHS, 4, "average")
    assert average.tolist() == pytest.approx([0.375, -0.625, 0.125, 0.125])


def test_uneven_trees_and_groups_are_scored_apart() -> None:
    # Group 1: a leaf that split off at the root ("0") beside a deeper subtree; group 2: a flat group (GRPO's
    # group mean only, as when every leaf is its own root branch).
    paths = ("0", "1/0", "1/1", "0", "1", "2")
    rewards = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    # Group 1, depth 0 mean 1/3: [-1/3, 2/3, -1/3]; depth 1 subtree "1" (mean 0.5): [0.5, -0.5] for rows 1, 2.
    average = tree_relative_rewards(rewards, paths, 3, "average")
    assert average.tolist() == pytest.approx([-1 / 3, (2 / 3 + 0.5) / 2, (-1 / 3 - 0.5) / 2, 2 / 3, -1 / 3, -1 / 3])


def test_the_estimator_whitens_over_tokens_and_needs_paths() -> None:
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 0, 0]])
    inputs = AdvantageInputs(rewards=REWARDS, mask=mask, group_size=4, paths=PATHS)
    advantages = ADVANTAGES.get("tree")(inputs, weighting="average")
    relative = torch.tensor([0.375, -0.625, 0.125, 0.125])
    tokens = relative[:, None].expand(4, 3)[mask.bool()]  # gamma 1, no KL: each token carries its leaf's score
    expected = (tokens - tokens.mean()) / (tokens.std() + 1e-6)
    torch.testing.assert_close(advantages[mask.bool()], expected)
    assert (advantages[~mask.bool()] == 0).all()
    with pytest.raises(ValueError, match="needs each response's tree path"):
        ADVANTAGES.get("tree")(AdvantageInputs(rewards=REWARDS, mask=mask, group_size=4))
    with pytest.raises(ValueError, match="one tree path per response"):
        AdvantageInputs(rewards=REWARDS, mask=mask, group_size=4, paths=PATHS[:3])
