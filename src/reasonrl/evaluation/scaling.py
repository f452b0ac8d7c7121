"""Accuracy against N: every strategy on subsets of each problem's stored responses, with intervals.

For N in 1, 2, 4, ... N_max, each problem's accuracy at N is the strategy's mean verifier score over
size-N subsets of its responses (all of them when there are few, else a seeded draw; the same subsets
for every strategy, so differences between strategies are not subset noise). The curve's point is the mean
over problems, with a bootstrap interval over problems. Oracle best-of-N needs no subsets: it is the
unbiased pass@N.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from reasonrl.evaluation.metrics import bootstrap_interval, n_schedule, pass_at_k, sample_subsets
from reasonrl.evaluation.records import Problem
from reasonrl.evaluation.strategies import StrategySpec

ORACLE = "oracle_best_of_n (pass@N)"


@dataclass(frozen=True)
class CurvePoint:
    """Accuracy at N and its bootstrap interval over problems."""

    n: int
    accuracy: float
    low: float
    high: float


@dataclass(frozen=True)
class Curve:
    label: str
    points: list[CurvePoint]

    def at(self, n: int) -> CurvePoint | None:
        return next((p for p in self.points if p.n == n), None)

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "points": [asdict(p) for p in self.points]}


@dataclass(frozen=True)
class IntervalSettings:
    """How curves are estimated: subsets per problem and N, bootstrap resamples, level, seed."""

    subsets: int = 16
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


def samples_per_problem(problems: Sequence[Problem]) -> int:
    """N_max: the smallest number of responses any problem has (every point uses every problem)."""
    if not problems:
        raise ValueError("no problems to evaluate")
    return min(len(p.samples) for p in problems)


def point(n: int, per_problem: Sequence[float], settings: IntervalSettings) -> CurvePoint:
    low, high = bootstrap_interval(
        per_problem, resamples=settings.resamples, confidence=settings.confidence, seed=settings.seed
    )
    return CurvePoint(n, statistics.fmean(per_problem), low, high)


def oracle_curve(problems: Sequence[Problem], settings: IntervalSettings) -> Curve:
    """Oracle best-of-N, i.e. pass@N: does any of N responses pass the verifier."""
    n_max = samples_per_problem(problems)
    points = []
    for n in n_schedule(n_max):
        values = [pass_at_k(n_max, int(sum(p.correct[:n_max])), n) for p in problems]
        points.append(point(n, values, settings))
    return Curve(ORACLE, points)


def strategy_curves(
    problems: Sequence[Problem], strategies: Sequence[StrategySpec], settings: IntervalSettings
) -> list[Curve]:
    """One curve per selection strategy, all evaluated on the same subsets."""
    n_max = samples_per_problem(problems)
    rng = np.random.default_rng(settings.seed)
    schedule = n_schedule(n_max)
    per_problem: dict[str, dict[int, list[float]]] = {spec.label: {n: [] for n in schedule} for spec in strategies}
    unscored = [0.0] * n_max  # what a strategy without a scorer (majority) is given
    for problem in problems:
        classes, correct = problem.classes[:n_max], problem.correct[:n_max]
        scores = {s.scorer: problem.scores(s.scorer)[:n_max] for s in strategies if s.scorer is not None}
        for n in schedule:
            subsets = sample_subsets(n_max, n, settings.subsets, rng)
            for spec in strategies:
                values = scores[spec.scorer] if spec.scorer is not None else unscored
                total = 0.0
                for subset in subsets:
                    chosen = spec.select([classes[i] for i in subset], [values[i] for i in subset])
                    total += correct[subset[chosen]]
                per_problem[spec.label][n].append(total / len(subsets))
    return [
        Curve(spec.label, [point(n, per_problem[spec.label][n], settings) for n in schedule]) for spec in strategies
    ]
