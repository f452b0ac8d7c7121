"""The speculative acceptance rule and residual: exact cuts on hand-built drafts, and a chi-squared test that the
l = 1 rule with residual resampling draws from the current policy (and that lenience, or SPEC-RL's resampling
from p, does not)."""

from __future__ import annotations

import math

import pytest
import torch
from tests.stats import chi2_pvalue

from reasonrl.algorithms.speculative import first_rejections, residual_distribution

# Row 0: ratios p/q = [1, 0.5, 3]; row 1 (two real tokens, one padding slot): ratios [0.25, 1].
NEW = torch.tensor([[0.5, 0.2, 0.9], [0.1, 0.5, 1.0]]).log()
OLD = torch.tensor([[0.5, 0.4, 0.3], [0.4, 0.5, 1e-9]]).log()
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
UNIFORMS = torch.tensor([[0.99, 0.6, 0.1], [0.3, 0.2, 0.999]])


def test_the_cut_is_the_first_token_whose_uniform_exceeds_the_ratio() -> None:
    # l = 1: row 0 keeps token 0 (0.99 <= 1), rejects token 1 (0.6 > 0.5); row 1 rejects token 0 (0.3 > 0.25).
    assert first_rejections(NEW, OLD, MASK, UNIFORMS, lenience=1.0).tolist() == [1, 0]


def test_lenience_multiplies_the_ratio_and_padding_is_never_a_rejection() -> None:
    # l = 1.5: row 0's ratios become [1.5, 0.75, 4.5] (all kept: the cut is the length 3); row 1's [0.375, 1.5],
    # kept whole (cut 2) although its padding slot has a tiny q and a uniform of 0.999.
    assert first_rejections(NEW, OLD, MASK, UNIFORMS, lenience=1.5).tolist() == [3, 2]
    # l = 0.5 halves them: row 0's first ratio 0.5 < 0.99 rejects at once.
    assert first_rejections(NEW, OLD, MASK, UNIFORMS, lenience=0.5).tolist() == [0, 0]


def test_seeded_uniforms_give_the_same_cut_every_time() -> None:
    uniforms = torch.rand(2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # torch's first float64 draws for seed 0: row 0 = 0.9701, 0.7078, 0.4594; row 1 = 0.9207, 0.6450, 0.7911.
    assert uniforms.flatten().tolist() == pytest.approx([0.9701, 0.7078, 0.4594, 0.9207, 0.6450, 0.7911], abs=1e-4)
    # l = 1: row 0 keeps 0.9701 <= 1, rejects 0.7078 > 0.5 -> 1; row 1 rejects 0.9207 > 0.25 -> 0.
    assert first_rejections(NEW, OLD, MASK, uniforms, lenience=1.0).tolist() == [1, 0]
    # l = 4: ratios [4, 2, 12] and [1, 4]: every uniform is below -> whole drafts, 3 and 2.
    assert first_rejections(NEW, OLD, MASK, uniforms, lenience=4.0).tolist() == [3, 2]


def test_residual_is_the_normalised_positive_part_of_p_minus_q() -> None:
    p = torch.tensor([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [0.2, 0.3, 0.5]])
    q = torch.tensor([[0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.2, 0.3, 0.5]])
    residual = residual_distribution(p, q)
    assert residual.flatten().tolist() == pytest.approx([1.0, 0.0, 0.0, 0.75, 0.25, 0.0, 0.2, 0.3, 0.5])


def test_bad_shapes_and_lenience_are_refused() -> None:
    with pytest.raises(ValueError, match="lenience must be > 0"):
        first_rejections(NEW, OLD, MASK, UNIFORMS, lenience=0.0)
    with pytest.raises(ValueError, match="share one"):
        first_rejections(NEW, OLD[:, :2], MASK, UNIFORMS, lenience=1.0)
    with pytest.raises(ValueError, match="share a shape"):
        residual_distribution(torch.ones(3), torch.ones(4))


def _one_token(p: torch.Tensor, q: torch.Tensor, lenience: float, residual: bool, n: int, seed: int) -> torch.Tensor:
    """n one-token speculative steps: draft y ~ q, keep it by the rule, else draw from the residual (or p)."""
    generator = torch.Generator().manual_seed(seed)
    drafts = torch.multinomial(q.expand(n, -1), 1, replacement=True, generator=generator)
    new, old = p.log()[drafts], q.log()[drafts]
    uniforms = torch.rand(n, 1, generator=generator, dtype=torch.float64)
    kept = first_rejections(new, old, torch.ones(n, 1), uniforms, lenience=lenience) == 1
    fallback = residual_distribution(p, q).float() if residual else p
    redrawn = torch.multinomial(fallback.expand(n, -1), 1, replacement=True, generator=generator)
    return torch.where(kept[:, None], drafts, redrawn)[:, 0]


P = torch.tensor([0.05, 0.10, 0.15, 0.20, 0.22, 0.28])
Q = torch.tensor([0.30, 0.25, 0.15, 0.10, 0.12, 0.08])
N = 60_000


def _chi2_pvalue(tokens: torch.Tensor) -> float:
    return chi2_pvalue(torch.bincount(tokens, minlength=len(P)), P * N)


def test_exact_rule_with_residual_samples_the_current_policy() -> None:
    assert _chi2_pvalue(_one_token(P, Q, lenience=1.0, residual=True, n=N, seed=0)) > 1e-3


@pytest.mark.parametrize(
    ("lenience", "residual"),
    [(math.exp(0.5), True), (1.0, False)],
    ids=["lenient", "spec-rl-resamples-from-p"],
)
def test_the_chi2_test_sees_lenient_and_spec_rl_resampling_as_other_distributions(
    lenience: float, residual: bool
) -> None:
    assert _chi2_pvalue(_one_token(P, Q, lenience=lenience, residual=residual, n=N, seed=0)) < 1e-6
