"""Estimators over per-problem outcomes: pass@k, the N schedule, subsets of samples, bootstrap intervals.

Pure functions with no model in sight, so every number in a report can be recomputed from stored samples.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with `c` correct among `n` samples (Chen et al. 2021, arXiv 2107.03374).

    pass@k = 1 - C(n-c, k) / C(n, k), the chance that k samples drawn without replacement from the n hold at
    least one correct one. Computed as the product 1 - prod_{i=n-c+1}^{n} (1 - k/i): every factor lies in
    [0, 1], so nothing overflows for n in the thousands, unlike the two binomials.
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"pass_at_k: {name} must be an integer, got {value!r}")
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}; draw at least k samples per problem")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def n_schedule(n_max: int) -> list[int]:
    """1, 2, 4, ... up to `n_max`, with `n_max` itself last when it is not a power of two."""
    if n_max < 1:
        raise ValueError(f"n_schedule: n_max must be >= 1, got {n_max}")
    values = [2**i for i in range(n_max.bit_length()) if 2**i <= n_max]
    return values if values[-1] == n_max else [*values, n_max]


def sample_subsets(n: int, k: int, count: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Subsets of size `k` of range(n), sorted: every one when there are at most `count` (an exact average),
    else `count` drawn uniformly without replacement within each subset."""
    if math.comb(n, k) <= count:
        return list(itertools.combinations(range(n), k))
    return [tuple(sorted(rng.choice(n, size=k, replace=False).tolist())) for _ in range(count)]


def majority_accuracy(classes: Sequence[int], correct: Sequence[float], k: int) -> float | None:
    """Exact maj@k of one problem: the expected verifier score of majority voting over a uniformly random
    size-`k` subset of its n responses, ties between answers broken uniformly at random.

    `classes` are the responses' answer classes (negative: no answer, never votes), `correct` their scores.
    Majority voting answers with a uniformly random response among those of the most frequent answer(s) in
    the subset (one of t tied answers with chance 1/t); with no answer in the subset, a uniformly random
    response of it. By symmetry the chosen response of answer j is right with its class's mean score acc_j,
    so maj@k = sum over subsets of [sum_{j tied at the top} acc_j / t] / C(n, k). The subsets are counted
    by class composition (multivariate hypergeometric), never enumerated: for each top count a, a dynamic
    programme over the answers tracks how many responses are taken and how many answers reach a, with every
    answer capped at a. None where that would be slow (about 5e7 multiply-adds: n in the hundreds with many
    answers) or overflow floats; the caller then samples subsets.
    """
    n = len(classes)
    if len(correct) != n or not 1 <= k <= n:
        raise ValueError(f"majority_accuracy: need 1 <= k <= n = len(classes) = len(correct), got k={k}")
    groups: dict[int, list[float]] = {}
    for label, value in zip(classes, correct, strict=True):
        groups.setdefault(label if label >= 0 else -1, []).append(float(value))
    silent = groups.pop(-1, [])
    answers = [(len(v), sum(v) / len(v)) for v in groups.values()]
    total = math.comb(n, k)
    top = min(k, max((c for c, _ in answers), default=0))
    work = sum(len(answers) * (k // a + 1) * (k + 1) ** 2 for a in range(1, top + 1))
    if total > 1e300 or work > 5e7:  # too costly here: the caller samples subsets instead
        return None
    width = k + 1
    shift = np.subtract.outer(np.arange(width), np.arange(width))  # shift[r', r] = r' - r

    def spread(weights: list[float]) -> np.ndarray:
        """The matrix that adds v responses with weight weights[v] to a count r: [r, r + v]."""
        padded = np.array([*weights, 0.0])
        index = np.where((shift >= 0) & (shift < len(weights)), shift, len(weights))
        return padded[index].T

    value = 0.0
    for a in range(1, top + 1):
        ties = k // a + 1
        w0 = np.zeros((ties, width))  # [answers at a, responses taken]: number of ways
        w1 = np.zeros((ties, width))  # ... times the sum of acc over the answers at a
        w0[0, 0] = 1.0
        for count, accuracy in answers:
            below = spread([float(math.comb(count, v)) for v in range(min(a - 1, count) + 1)])
            n0, n1 = w0 @ below, w1 @ below
            if count >= a:
                ways = float(math.comb(count, a))
                n0[1:, a:] += ways * w0[:-1, : width - a]
                n1[1:, a:] += ways * (w1[:-1, : width - a] + accuracy * w0[:-1, : width - a])
            w0, w1 = n0, n1
        rest = spread([float(math.comb(len(silent), v)) for v in range(min(len(silent), k) + 1)])
        taken = (w1 @ rest)[:, k]
        value += float(sum(taken[s] / s for s in range(1, ties)))
    if len(silent) >= k:  # nothing in the subset votes: a random response of it, i.e. of the silent ones
        value += math.comb(len(silent), k) * sum(silent) / len(silent)
    result = value / total
    return result if math.isfinite(result) else None


def bootstrap_interval(
    values: Sequence[float], *, resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (one per problem), resampling problems.

    Problems are the unit that varies between benchmarks, so they are what is resampled; the samples within
    a problem are already averaged into its value. Seeded, so a report is reproducible.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"bootstrap_interval: confidence must be in (0, 1), got {confidence}")
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)
