"""maj@k: exact from the answer counts, random ties by default, and the Monte Carlo error where sampled."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from reasonrl.evaluation import majority_vote, parse_strategy
from reasonrl.evaluation.metrics import majority_accuracy
from reasonrl.evaluation.report import EvalReport, report_markdown
from reasonrl.evaluation.scaling import IntervalSettings, strategy_curves
from reasonrl.evaluation.strategies import majority_candidates
from reasonrl.rewards.equivalence import NO_ANSWER

from .synthetic import synthetic_problems


def enumerated(classes: list[int], correct: list[float], k: int) -> float:
    """maj@k by definition: every k-subset, a tie between t answers counting 1/t each."""
    values = []
    for subset in itertools.combinations(range(len(classes)), k):
        picks = majority_candidates([classes[i] for i in subset])
        values.append(statistics.fmean(correct[subset[i]] for i in picks))
    return statistics.fmean(values)


def test_a_tie_between_right_and_wrong_counts_one_half() -> None:
    assert majority_accuracy([0, 1], [1.0, 0.0], 2) == 0.5
    assert majority_accuracy([1, 0], [0.0, 1.0], 2) == 0.5
    problem_classes = [0, 1]
    assert majority_vote(problem_classes) in (0, 1)
    first = parse_strategy("majority?ties=first")
    assert first.select([0, 1], [0.0, 0.0]) == 0  # the old rule: the first-seen answer wins
    assert first.label == "majority(ties=first)"


def test_right_then_wrong_gives_maj_at_2_of_one_half_on_the_curve() -> None:
    problems = synthetic_problems(1, 2, [(0, 1.0)])
    problems[0].samples[1].answer_class = 1
    problems[0].samples[1].verifier_score = 0.0
    majority, first = strategy_curves(
        problems, [parse_strategy("majority"), parse_strategy("majority?ties=first")], IntervalSettings(resamples=20)
    )
    assert majority.at(2).accuracy == 0.5 and majority.at(2).mc_stderr == 0.0
    assert first.at(2).accuracy == 1.0  # order-dependent: [wrong, right] would give 0


def test_exact_majority_equals_enumeration_of_every_subset() -> None:
    rng = random.Random(0)
    for _ in range(60):
        n = rng.randint(1, 9)
        classes = [rng.choice([NO_ANSWER, 0, 0, 1, 1, 2, 3]) for _ in range(n)]
        correct = [float(label == 0) for label in classes]
        for k in range(1, n + 1):
            assert majority_accuracy(classes, correct, k) == pytest.approx(enumerated(classes, correct, k), abs=1e-12)


def test_monte_carlo_agrees_with_exact_within_its_reported_error() -> None:
    # majority?ties=first on symmetric data has the same expectation as random ties, but is sampled.
    problems = synthetic_problems(40, 24, [(0, 0.4), (1, 0.3), (2, 0.3)], seed=2)
    settings = IntervalSettings(subsets=16, resamples=50, exact_subsets=300, target_stderr=0.003, max_subsets=256)
    exact, sampled = strategy_curves(
        problems, [parse_strategy("majority"), parse_strategy("best_of_n?scorer=noisy")], settings
    )
    for n in (4, 8, 16):
        point = exact.at(n)
        assert point is not None and point.mc_stderr == 0.0
    manual = statistics.fmean(majority_accuracy(p.classes, p.correct, 8) or 0.0 for p in problems)
    assert exact.at(8).accuracy == pytest.approx(manual, abs=1e-12)

    # Monte Carlo: best_of_n under a constant scorer answers with the subset's first (lowest-index) response,
    # the i-th with chance C(n - 1 - i, k - 1) / C(n, k); the reported error must cover the gap to that.
    def first_of_subset(n: int) -> float:
        return statistics.fmean(
            sum(p.correct[i] * math.comb(23 - i, n - 1) for i in range(24)) / math.comb(24, n) for p in problems
        )

    for n in (4, 8, 16):
        point = sampled.at(n)
        # 40 problems x 256 subsets of a coin flip: sqrt(0.24 / (256 * 40)) ~ 0.005 (max_subsets reached)
        assert point is not None and 0 < point.mc_stderr <= 0.006
        assert abs(point.accuracy - first_of_subset(n)) <= 4 * point.mc_stderr
    assert sampled.at(2).mc_stderr == 0.0  # C(24, 2) = 276 <= 300: enumerated, exact
    assert sampled.at(24).mc_stderr == 0.0


def test_the_report_prints_the_monte_carlo_error() -> None:
    problems = synthetic_problems(10, 16, [(0, 0.5), (1, 0.5)], seed=4)
    settings = IntervalSettings(subsets=8, resamples=20, exact_subsets=100, max_subsets=8)
    curves = strategy_curves(problems, [parse_strategy("majority"), parse_strategy("best_of_n?scorer=noisy")], settings)
    report = EvalReport("m", "d", 10, 16, 0.5, curves)
    point = curves[1].at(8)
    assert point is not None and point.mc_stderr > 0
    assert f"±{point.mc_stderr:.4f}" in report_markdown(report)
    data = report.to_json()
    assert data["curves"][1]["points"][3]["mc_stderr"] == point.mc_stderr
    assert data["curves"][0]["points"][3]["mc_stderr"] == 0.0
    assert EvalReport.from_json(data).curves[1].at(8) == point
