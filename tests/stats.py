"""Statistical checks shared by tests that compare sampled tokens with a distribution."""

from __future__ import annotations

import torch


def chi2_pvalue(counts: torch.Tensor, expected: torch.Tensor) -> float:
    """Pearson's chi-squared test of counts against expected counts: P(X >= statistic) for X ~ chi2(bins - 1),
    the regularized upper incomplete gamma function Q(k/2, x/2) (scipy is not a dependency)."""
    statistic = ((counts.double() - expected.double()) ** 2 / expected.double()).sum()
    dof = torch.tensor((len(counts) - 1) / 2, dtype=torch.float64)
    return float(torch.special.gammaincc(dof, statistic / 2))
