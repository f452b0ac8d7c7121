"""Best-of-Majority at k > 1 (Di et al. 2025, arXiv 2510.03199): up to k frequent answers submitted, pass@k."""

from __future__ import annotations

import itertools
import random

import pytest

from reasonrl.data import Prompt
from reasonrl.evaluation import parse_strategy
from reasonrl.evaluation.records import EvalSample, Problem
from reasonrl.evaluation.scaling import IntervalSettings, strategy_curves
from reasonrl.evaluation.strategies import DEFAULT_STRATEGIES

from .synthetic import synthetic_problems

SETTINGS = IntervalSettings(subsets=16, resamples=200, seed=0)


def hand_made_problem() -> Problem:
    """Four responses: the right answer (class 0) scored lowest, a wrong answer twice, one over-rated wrong."""
    prompt = Prompt(id="p", answer="0", task="exact", text="q")
    samples = []
    for i, (label, score) in enumerate([(0, 0.3), (1, 0.9), (1, 0.8), (2, 0.95)]):
        sample = EvalSample(prompt, i, [], str(label), [], [], "stop", answer=str(label), answer_class=label)
        sample.verifier_score = 1.0 if label == 0 else 0.0
        sample.scores["noisy"] = score
        samples.append(sample)
    return Problem(prompt, samples)


def test_pass_at_k_of_best_of_majority_on_a_hand_made_problem_is_exact() -> None:
    # N_max = 4 and 16 subsets: every subset of every size is enumerated, so the values are exact.
    # N = 1: each response alone, right 1 time in 4. N = 2 (alpha 0.25: every answer qualifies): the pairs
    # holding response 0 are {0,1}, {0,2}, {0,3}; its partner always outscores it, so k = 1 misses all six
    # pairs and k >= 2 gets those three. N = 4: the answers ranked by best score are 2 (0.95), 1 (0.9), 0 (0.3),
    # so only k = 3 reaches the right one.
    specs = [parse_strategy(f"best_of_majority?scorer=noisy&alpha=0.25&k={k}") for k in (1, 2, 3)]
    curves = strategy_curves([hand_made_problem()], specs, SETTINGS)
    assert [c.label for c in curves] == [f"best_of_majority(scorer=noisy, alpha=0.25, k={k})" for k in (1, 2, 3)]
    expected = {1: [0.25, 0.0, 0.0], 2: [0.25, 0.5, 0.0], 3: [0.25, 0.5, 1.0]}
    for k, curve in zip((1, 2, 3), curves, strict=True):
        assert [p.n for p in curve.points] == [1, 2, 4]
        assert [p.accuracy for p in curve.points] == pytest.approx(expected[k])
    # At N = 4 with alpha 0.5 only answer 1 (2 of 4) qualifies: however large k, one wrong submission.
    (strict,) = strategy_curves(
        [hand_made_problem()], [parse_strategy("best_of_majority?scorer=noisy&k=3&alpha=0.5")], SETTINGS
    )
    assert strict.at(4) is not None and strict.at(4).accuracy == 0.0


def noisy(base: dict[int, float]):
    def score(label: int, rng: random.Random) -> float:
        return base[label] + rng.gauss(0, 0.1)

    return score


@pytest.mark.parametrize(
    ("answers", "base"),
    [
        # A scorer that over-rates a rare wrong answer (5%): best-of-N falls as N grows.
        ([(0, 0.45), (1, 0.05), (2, 0.25), (3, 0.25)], {0: 0.6, 1: 0.9, 2: 0.3, 3: 0.3}),
        # The most frequent answer is wrong, the scorer prefers the right one, rare answers are over-rated.
        (
            [(0, 0.35), (1, 0.4), (2, 0.05), (3, 0.05), (4, 0.05), (5, 0.1)],
            {0: 0.7, 1: 0.5, 2: 0.9, 3: 0.9, 4: 0.9, 5: 0.2},
        ),
    ],
)
def test_best_of_majority_does_not_degrade_with_n_at_any_k(answers, base) -> None:
    problems = synthetic_problems(150, 32, answers, score=noisy(base), seed=3)
    specs = [parse_strategy(f"best_of_majority?scorer=noisy&alpha=0.2&k={k}") for k in (1, 2, 4)]
    curves = strategy_curves(problems, specs, SETTINGS)
    for curve in curves:
        values = [p.accuracy for p in curve.points]
        assert all(later >= earlier - 0.02 for earlier, later in itertools.pairwise(values)), (curve.label, values)
    # Submitting the top k includes the top 1, so pass@k never falls below pass@1 at any N, on any subset.
    for smaller, larger in itertools.pairwise(curves):
        assert all(b.accuracy >= a.accuracy for a, b in zip(smaller.points, larger.points, strict=True))
    assert curves[-1].points[-1].accuracy > 0.95


def test_k_is_validated_and_shown_in_labels() -> None:
    with pytest.raises(ValueError, match=r"option 'k' = 0 is invalid: Input should be greater than or equal to 1"):
        parse_strategy("best_of_majority?k=0")
    with pytest.raises(ValueError, match=r"option 'k' = 1\.5 is invalid"):
        parse_strategy("best_of_majority?k=1.5")
    assert parse_strategy("best_of_majority").label == "best_of_majority(k=1)"
    assert parse_strategy("best_of_majority?k=4").label == "best_of_majority(k=4)"
    assert parse_strategy("majority").label == "majority"  # no k option: nothing added
    assert {parse_strategy(s).label for s in DEFAULT_STRATEGIES} >= {"best_of_majority(k=1)", "best_of_majority(k=4)"}


def test_every_other_strategy_still_submits_one_response() -> None:
    classes, scores = [1, 0, 1, 2], [0.2, 0.9, 0.3, 0.95]
    for name in ("majority", "best_of_n", "weighted_majority"):
        spec = parse_strategy(name)
        assert len(spec.submit(classes, scores)) == 1
        assert spec.select(classes, scores) == spec.submit(classes, scores)[0]
