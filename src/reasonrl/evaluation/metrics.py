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
