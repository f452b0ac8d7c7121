"""Selection strategies on synthetic samplers with known answer distributions and scorers."""

from __future__ import annotations

import itertools
import random

import pytest

from reasonrl.evaluation import best_of_majority, best_of_n, majority_vote, parse_strategy, weighted_majority
from reasonrl.evaluation.scaling import IntervalSettings, oracle_curve, strategy_curves
from reasonrl.rewards.equivalence import NO_ANSWER, answer_key, group_answers, majority_class

from .synthetic import synthetic_problems

SETTINGS = IntervalSettings(subsets=16, resamples=200, seed=0)


def test_selection_functions_on_a_hand_made_example() -> None:
    classes = [1, 0, 1, NO_ANSWER, 0, 2]
    scores = [0.2, 0.9, 0.3, 5.0, 0.1, 0.95]
    assert majority_vote(classes, ties="first") == 0  # classes 1 and 0 tie; class 1 was seen first
    assert majority_vote(classes) in (0, 1, 2, 4)  # default: a random response of the tied classes
    assert best_of_n(classes, scores) == 3  # the scorer may pick an answerless response
    assert weighted_majority(classes, scores) == 1  # class 0 sums to 1.0, class 2 to 0.95, class 1 to 0.5
    assert best_of_majority(classes, scores, alpha=0.3) == [1]  # classes 0 and 1 qualify (2/6); 0 scores best
    assert best_of_majority(classes, scores, alpha=0.5) == [1]  # nobody reaches 3/6: the most frequent qualify
    assert best_of_majority(classes, scores, alpha=0.3, k=2) == [1, 2]  # then class 1's best response
    assert best_of_majority(classes, scores, alpha=0.3, k=3) == [1, 2]  # only two answers qualify
    assert best_of_majority(classes, scores, alpha=0.1, k=3) == [5, 1, 2]  # every answer qualifies; none of -1


def test_best_of_majority_keeps_an_answer_whose_share_is_exactly_alpha() -> None:
    # 7 / 25 = 0.28 exactly, but 7 >= 0.28 * 25 is false in floating point: class 0 must still qualify.
    classes = [0] * 7 + [1] * 8 + list(range(2, 12))
    scores = [0.9] * 7 + [0.5] * 8 + [0.1] * 10
    assert [classes[i] for i in best_of_majority(classes, scores, alpha=0.28)] == [0]
    assert majority_vote([NO_ANSWER, NO_ANSWER], ties="first") == 0


def test_equivalent_math_answers_vote_together() -> None:
    key = answer_key("math")
    answers = [key.extract(text) for text in ("\\boxed{0.5}", "The answer is \\frac12.", "so 3", "#### 1/2")]
    classes = group_answers(answers, key)
    assert classes[0] == classes[1] == classes[3] != classes[2]
    assert majority_class(classes) == classes[0]


def test_majority_voting_beats_a_single_sample() -> None:
    # Right 40% of the time; the other 60% spread over six wrong answers, none above 10%.
    answers = [(0, 0.4)] + [(label, 0.1) for label in range(1, 7)]
    problems = synthetic_problems(200, 16, answers)
    (majority,) = strategy_curves(problems, [parse_strategy("majority")], SETTINGS)
    single = majority.at(1)
    assert single is not None and single.accuracy == pytest.approx(0.4, abs=0.05)
    end = majority.at(16)
    assert end is not None and end.accuracy > 0.85 and end.low > single.high
    # maj@2 equals maj@1 in expectation (a tie goes to a random one of the two); from 4 on voting pays.
    accuracies = [p.accuracy for p in majority.points]
    assert accuracies[1] == pytest.approx(accuracies[0], abs=0.03)
    assert accuracies[1] < accuracies[2] < accuracies[3] < accuracies[4]


def test_best_of_majority_does_not_degrade_where_best_of_n_does() -> None:
    # A noisy scorer that over-rates one rare wrong answer (class 1, 5% of samples): reward hacking.
    answers = [(0, 0.45), (1, 0.05), (2, 0.25), (3, 0.25)]
    base = {0: 0.6, 1: 0.9, 2: 0.3, 3: 0.3}

    def noisy(label: int, rng: random.Random) -> float:
        return base[label] + rng.gauss(0, 0.1)

    problems = synthetic_problems(300, 64, answers, score=noisy, seed=1)
    bon, bom = strategy_curves(
        problems,
        [parse_strategy("best_of_n?scorer=noisy"), parse_strategy("best_of_majority?scorer=noisy&alpha=0.2")],
        SETTINGS,
    )
    bon_values = [p.accuracy for p in bon.points]
    bom_values = [p.accuracy for p in bom.points]
    assert bon_values[-1] < bon_values[0] - 0.2  # best-of-N falls as N grows
    assert all(later >= earlier - 0.02 for earlier, later in itertools.pairwise(bom_values))
    assert bom_values[-1] > 0.9 > bon_values[-1]


def test_oracle_is_pass_at_n() -> None:
    problems = synthetic_problems(50, 8, [(0, 0.2), (1, 0.8)])
    curve = oracle_curve(problems, SETTINGS)
    assert [p.n for p in curve.points] == [1, 2, 4, 8]
    mean = sum(s.correct for p in problems for s in p.samples) / 400
    assert curve.points[0].accuracy == pytest.approx(mean)


def test_strategy_strings_are_validated_with_the_fix() -> None:
    assert parse_strategy("best_of_majority?alpha=0.3").options["alpha"] == 0.3
    assert parse_strategy("particle_filter?delimiter=%0A").particle_options().delimiter == "\n"
    with pytest.raises(ValueError, match="did you mean 'best_of_n'"):
        parse_strategy("best_of_nn")
    with pytest.raises(ValueError, match="did you mean 'alpha'"):
        parse_strategy("best_of_majority?alpa=0.3")
    with pytest.raises(ValueError, match=r"option 'alpha' = 1\.5 is invalid: Input should be less than or equal to 1"):
        parse_strategy("best_of_majority?alpha=1.5")
