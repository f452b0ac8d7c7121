"""pass@k: the product form equals the definition (enumerate every k-subset) and stays finite for large n."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from reasonrl.evaluation import bootstrap_interval, n_schedule, pass_at_k
from reasonrl.evaluation.metrics import sample_subsets


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """The share of k-subsets of n samples (the first c correct) that hold a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_is_stable_where_binomials_overflow_floats() -> None:
    n, c, k = 5000, 3, 1000
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)  # exact integers, then one division
    assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-9)
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)
    assert pass_at_k(10_000, 0, 500) == 0.0
    assert pass_at_k(10_000, 9_600, 500) == 1.0


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_pass_at_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="pass_at_k"):
        pass_at_k(n, c, k)


def test_n_schedule_doubles_and_ends_at_n_max() -> None:
    assert n_schedule(1) == [1]
    assert n_schedule(8) == [1, 2, 4, 8]
    assert n_schedule(12) == [1, 2, 4, 8, 12]


def test_subsets_are_exhaustive_when_few_and_seeded_when_many() -> None:
    rng = np.random.default_rng(0)
    assert sample_subsets(4, 2, 16, rng) == list(itertools.combinations(range(4), 2))
    drawn = sample_subsets(16, 4, 10, np.random.default_rng(1))
    assert len(drawn) == 10 and all(len(set(s)) == 4 for s in drawn)
    assert drawn == sample_subsets(16, 4, 10, np.random.default_rng(1))


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible() -> None:
    values = [float(i % 3 == 0) for i in range(300)]
    low, high = bootstrap_interval(values, seed=3)
    assert low < np.mean(values) < high
    assert (low, high) == bootstrap_interval(values, seed=3)
    assert high - low < 0.15
