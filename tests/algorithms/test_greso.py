"""GRESO's pure decisions on hand-computed traces: streaks, skip probabilities, and the adaptation step."""

from __future__ import annotations

import pytest

from reasonrl.algorithms.greso import (
    EASY_MEAN_REWARD,
    HARD_MEAN_REWARD,
    MIN_KEEP_PROBABILITY,
    adapt_probability,
    skip_probability,
    streaks,
)


def test_thresholds_are_the_papers() -> None:
    assert (EASY_MEAN_REWARD, HARD_MEAN_REWARD, MIN_KEEP_PROBABILITY) == (0.98, 0.11, 0.01)


@pytest.mark.parametrize(
    ("trace", "expected"),
    [
        ([], (0, 0)),
        ([1.0], (1, 0)),
        ([0.5, 1.0, 1.0], (2, 0)),
        ([0.0, 0.0, 0.0], (0, 3)),
        ([1.0, 0.5], (0, 0)),
        ([0.0, 0.5], (0, 0)),
        # the last entry decides: only the trailing hard run counts, the easy run before it does not
        ([1.0, 1.0, 1.0, 0.0, 0.0], (0, 2)),
        ([0.0, 0.0, 1.0], (1, 0)),
        # the thresholds are inclusive: 0.98 is easy, 0.11 is hard; just past them is neither
        ([0.98, 0.11], (0, 1)),
        ([0.11, 0.98], (1, 0)),
        ([0.97], (0, 0)),
        ([0.12], (0, 0)),
        ([1.0, float("nan"), 1.0], (1, 0)),
    ],
)
def test_streaks_count_the_trailing_run_of_the_last_entrys_kind(trace: list[float], expected: tuple[int, int]) -> None:
    assert streaks(trace) == expected


def test_streaks_accept_any_sequence() -> None:
    assert streaks((0.0, 1.0, 1.0)) == (2, 0)


def test_two_easy_epochs_keep_with_p_squared() -> None:
    # z_easy = 2: keep 0.5 ** 2 = 0.25, skip 0.75 (exact in binary floating point)
    assert skip_probability([1.0, 1.0], p_easy=0.5, p_hard=0.9) == 0.75


def test_one_hard_epoch_uses_p_hard_not_p_easy() -> None:
    assert skip_probability([0.0], p_easy=0.9, p_hard=0.25) == 0.75
    assert skip_probability([1.0], p_easy=0.25, p_hard=0.9) == 0.75


def test_long_streaks_hit_the_keep_floor() -> None:
    # 0.5 ** 8 = 0.0039 < 0.01, so the keep probability is the floor: never a certain skip
    assert skip_probability([0.0] * 8, p_easy=0.5, p_hard=0.5) == 1 - MIN_KEEP_PROBABILITY == 0.99
    assert skip_probability([1.0] * 50, p_easy=0.9, p_hard=0.5) == 0.99
    # 0.5 ** 6 = 0.015625 is still above the floor
    assert skip_probability([1.0] * 6, p_easy=0.5, p_hard=0.5) == 1 - 0.015625


def test_no_streak_means_no_skip() -> None:
    assert skip_probability([], 0.5, 0.5) == 0.0
    assert skip_probability([1.0, 0.5], 0.5, 0.5) == 0.0
    assert skip_probability([0.0, 0.0, 0.375], 0.5, 0.5) == 0.0


def test_mixed_trace_counts_only_the_trailing_hard_streak() -> None:
    # easy x3 then hard x2: z_hard = 2, keep p_hard ** 2 = 0.04, skip 0.96; p_easy plays no part
    assert skip_probability([1.0, 1.0, 1.0, 0.0, 0.0], p_easy=0.05, p_hard=0.2) == pytest.approx(0.96, abs=1e-15)


@pytest.mark.parametrize(("p_easy", "p_hard"), [(0.0, 0.5), (1.0, 0.5), (0.5, -0.1), (0.5, 1.5)])
def test_skip_probability_rejects_bases_outside_the_open_unit_interval(p_easy: float, p_hard: float) -> None:
    with pytest.raises(ValueError, match=r"must be in \(0, 1\)"):
        skip_probability([1.0], p_easy, p_hard)


def test_adapt_moves_down_at_or_above_the_target_and_up_below_it() -> None:
    assert adapt_probability(0.5, observed_share=0.2, target=0.1) == 0.49
    assert adapt_probability(0.5, observed_share=0.1, target=0.1) == 0.49  # at the target: skip more
    assert adapt_probability(0.5, observed_share=0.0, target=0.1) == 0.51
    assert adapt_probability(0.5, 0.0, 0.1, step=0.25) == 0.75


def test_adapt_clamps_at_the_bounds() -> None:
    assert adapt_probability(0.05, observed_share=1.0, target=0.1) == 0.05
    assert adapt_probability(0.055, observed_share=1.0, target=0.1) == 0.05
    assert adapt_probability(0.95, observed_share=0.0, target=0.1) == 0.95
    assert adapt_probability(0.945, observed_share=0.0, target=0.1) == 0.95
    assert adapt_probability(0.5, 0.0, 0.1, low=0.2, high=0.505) == 0.505
    # a value already outside the bounds is pulled back in
    assert adapt_probability(0.99, observed_share=1.0, target=0.1) == 0.95


def test_adapt_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="low <= high"):
        adapt_probability(0.5, 0.0, 0.1, low=0.9, high=0.1)
    with pytest.raises(ValueError, match="step must be >= 0"):
        adapt_probability(0.5, 0.0, 0.1, step=-0.01)
    with pytest.raises(ValueError, match="NaN"):
        adapt_probability(0.5, float("nan"), 0.1)
