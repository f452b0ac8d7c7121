"""Attention-guided credit assignment on hand-built attention maps: head groups, WAAD, FAI, the selections
and the three strategies' weights."""

from __future__ import annotations

import pytest
import torch

from reasonrl.algorithms.attention_credit import (
    coupled_bonus,
    credit_weights,
    fai,
    head_distances,
    head_groups,
    top_tokens,
    waad,
    waad_jumps,
)


def test_heads_split_by_mean_backward_distance_over_response_rows() -> None:
    looks_at_itself = torch.eye(3)
    looks_at_first = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    distances = head_distances(torch.stack([looks_at_first, looks_at_itself]), start=1)
    torch.testing.assert_close(distances, torch.tensor([1.5, 0.0]))  # rows 1, 2 look back 1 and 2
    local, far = head_groups(distances, 0.5)
    assert local.tolist() == [1] and far.tolist() == [0]
    local, far = head_groups(torch.tensor([2.0, 1.0, 1.0, 3.0]), 0.5)
    assert local.tolist() == [1, 2] and far.tolist() == [3, 0]
    assert head_groups(torch.tensor([2.0, 1.0]), 0.1)[0].tolist() == [1]  # at least one head each
    with pytest.raises(ValueError, match="head share"):
        head_groups(distances, 0.0)
    with pytest.raises(ValueError, match="response must start"):
        head_distances(torch.stack([looks_at_itself]), start=3)


def test_waad_weighs_distance_capped_at_the_window() -> None:
    attention = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    torch.testing.assert_close(waad(attention, 10), torch.tensor([0.0, 0.5, 0.7]))  # 0.2*2 + 0.3*1
    torch.testing.assert_close(waad(attention, 1), torch.tensor([0.0, 0.5, 0.5]))  # 0.2*1 + 0.3*1


def test_fai_averages_attention_from_response_rows_in_the_future_window() -> None:
    attention = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.6, 0.4, 0.0, 0.0], [0.1, 0.2, 0.7, 0.0], [0.1, 0.3, 0.2, 0.4]])
    values, has_window = fai(attention, start=1, near=1, far=2)
    # token 1: rows 2, 3 -> (0.2 + 0.3) / 2; token 2: row 3 -> 0.2; token 3: no later row
    torch.testing.assert_close(values, torch.tensor([0.25, 0.2, 0.0]))
    assert has_window.tolist() == [True, True, False]
    values, has_window = fai(attention, start=1, near=2, far=2)
    torch.testing.assert_close(values, torch.tensor([0.3, 0.0, 0.0]))
    assert has_window.tolist() == [True, False, False]


def test_jumps_and_top_selection() -> None:
    jumps, defined = waad_jumps(torch.tensor([0.0, 0.5, 0.5, 2.0]))
    torch.testing.assert_close(jumps, torch.tensor([0.5, 0.0, 1.5, 0.0]))
    assert defined.tolist() == [True, True, True, False]
    assert top_tokens(jumps, defined, 0.67).tolist() == [True, False, True, False]  # floor(0.67 * 3) = 2
    assert top_tokens(torch.ones(3), torch.ones(3, dtype=torch.bool), 0.34).tolist() == [True, False, False]
    assert not top_tokens(torch.ones(2), torch.zeros(2, dtype=torch.bool), 1.0).any()


def test_coupled_bonus_moves_alpha_of_dominated_anchors_to_their_preplan_token() -> None:
    anchors = torch.tensor([False, False, True, False, False, True, True])
    preplan = torch.tensor([True, False, False, True, True, False, False])
    jumps = torch.tensor([0.9, 0.0, 0.0, 0.3, 0.8, 0.0, 0.0])
    waad_values = torch.tensor([3.0, 1.0, 1.0, 0.0, 4.0, 1.5, 5.0])  # mean 15.5 / 7
    # anchor 2: WAAD 1 <= mean, preplan 0 in 0..1 -> dominated, introduced by 0
    # anchor 5: WAAD 1.5 <= mean, preplan 3 and 4 in 2..4 -> dominated, introduced by 4 (larger jump)
    # anchor 6: WAAD 5 > mean -> keeps its whole bonus
    bonus = coupled_bonus(anchors, preplan, jumps, waad_values, alpha=0.25, window=3)
    torch.testing.assert_close(bonus, torch.tensor([0.25, 0.0, 0.75, 0.0, 0.25, 0.75, 1.0]))
    alone = coupled_bonus(anchors, preplan, jumps, waad_values, alpha=0.25, window=1)
    torch.testing.assert_close(alone, torch.tensor([0.0, 0.0, 1.0, 0.0, 0.25, 0.75, 1.0]))


def _rhythm() -> torch.Tensor:
    """Two heads over 5 positions, the response starting at 1. Head 0 is local (mean distance 0.5) and has a
    WAAD peak at position 2; head 1 is global (mean distance 1.9) and position 4 leans on position 3."""
    local = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
        ]
    )
    wide = torch.zeros(5, 5)
    wide[:4, 0] = 1.0
    wide[4, 0], wide[4, 3] = 0.2, 0.8
    return torch.stack([local, wide])


def test_strategies_amplify_their_selected_tokens() -> None:
    # response WAAD (head 0) = [0, 2, 0, 0] -> jumps [2, 2, 0, -]: preplan = floor(0.4 * 3) = 1 token, the first
    # FAI (head 1, window 1..2) = [0, 0, 0.8, -]: anchor = the third response token
    kwargs = {"future_near": 1, "future_far": 2, "head_share": 0.5, "top_share": 0.4, "amplification": 1.5}
    attention = _rhythm()
    preplan = credit_weights(attention, 1, strategy="preplan", **kwargs)
    torch.testing.assert_close(preplan, torch.tensor([1.5, 1.0, 1.0, 1.0]))
    anchor = credit_weights(attention, 1, strategy="anchor", **kwargs)
    torch.testing.assert_close(anchor, torch.tensor([1.0, 1.0, 1.5, 1.0]))
    # the anchor's WAAD 0 <= mean 0.5 and the preplan token is 2 before it: 0.2 of its bonus moves back
    coupled = credit_weights(attention, 1, strategy="coupled", alpha=0.2, **kwargs)
    torch.testing.assert_close(coupled, torch.tensor([1.1, 1.0, 1.4, 1.0]))
    far_apart = credit_weights(attention, 1, strategy="coupled", alpha=0.2, coupling_window=1, **kwargs)
    torch.testing.assert_close(far_apart, anchor)
    with pytest.raises(ValueError, match="unknown strategy"):
        credit_weights(attention, 1, strategy="random")  # type: ignore[arg-type]


def test_amplification_one_is_plain_credit() -> None:
    weights = credit_weights(_rhythm(), 1, future_near=1, future_far=2, amplification=1.0)
    torch.testing.assert_close(weights, torch.ones(4))
