"""Accuracy against N: every strategy on subsets of each problem's stored responses, with intervals.

For N in 1, 2, 4, ... N_max, each problem's accuracy at N is the strategy's mean verifier score over
size-N subsets of its responses (exact where possible: majority voting from its answer counts, the rest by
enumerating the subsets when there are few; else seeded draws until a target Monte Carlo standard error,
which each point reports as `mc_stderr`; the same subsets for every strategy, so differences between
strategies are not subset noise). The curve's point is the mean
over problems, with a bootstrap interval over problems. Oracle best-of-N needs no subsets: it is the
unbiased pass@N.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from reasonrl.evaluation.metrics import (
    bootstrap_interval,
    majority_accuracy,
    n_schedule,
    pass_at_k,
    sample_subsets,
)
from reasonrl.evaluation.records import Problem
from reasonrl.evaluation.strategies import StrategySpec, majority_candidates

ORACLE = "oracle_best_of_n (pass@N)"


@dataclass(frozen=True)
class CurvePoint:
    """Accuracy at N, its bootstrap interval over problems, and `mc_stderr`: the Monte Carlo standard error
    of `accuracy` from averaging random subsets rather than all of them (0 when computed exactly)."""

    n: int
    accuracy: float
    low: float
    high: float
    mc_stderr: float = 0.0


@dataclass(frozen=True)
class Curve:
    """One strategy's accuracy against N. `extra_tokens_per_problem`: for a strategy that generates (particle
    filtering, a synthesizer), the mean number of tokens it generated per problem beyond the stored samples,
    at the curve's largest N; None for a strategy that only selects among the stored samples."""

    label: str
    points: list[CurvePoint]
    extra_tokens_per_problem: float | None = None

    def at(self, n: int) -> CurvePoint | None:
        return next((p for p in self.points if p.n == n), None)

    def to_json(self) -> dict[str, object]:
        return {
            "label": self.label,
            "points": [asdict(p) for p in self.points],
            "extra_tokens_per_problem": self.extra_tokens_per_problem,
        }


@dataclass(frozen=True)
class IntervalSettings:
    """How curves are estimated: subsets per problem and N drawn per round, bootstrap resamples, level, seed;
    all subsets when there are at most `exact_subsets`, else rounds of `subsets` random ones per problem
    until the point's Monte Carlo standard error is at most `target_stderr` or `max_subsets` are drawn."""

    subsets: int = 16
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    exact_subsets: int = 256
    target_stderr: float = 0.005
    max_subsets: int = 128


def samples_per_problem(problems: Sequence[Problem]) -> int:
    """N_max: the smallest number of responses any problem has (every point uses every problem)."""
    if not problems:
        raise ValueError("no problems to evaluate")
    return min(len(p.samples) for p in problems)


def point(n: int, per_problem: Sequence[float], settings: IntervalSettings, mc_stderr: float = 0.0) -> CurvePoint:
    low, high = bootstrap_interval(
        per_problem, resamples=settings.resamples, confidence=settings.confidence, seed=settings.seed
    )
    return CurvePoint(n, statistics.fmean(per_problem), low, high, mc_stderr)


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
    """One curve per selection strategy, all evaluated on the same subsets.

    Each point is exact where it can be: majority voting with random ties (the default) from the answer
    counts (`metrics.majority_accuracy`), every strategy at N_max and wherever C(N_max, N) <= `exact_subsets`
    by enumerating the subsets. Otherwise subsets are drawn in rounds (the same ones for every strategy) until
    the point's Monte Carlo standard error, sqrt(sum_p s_p^2 / m) / P over the P problems with s_p^2 the
    variance of problem p's value over its m subsets, is at most `target_stderr`, or `max_subsets` are drawn;
    the point reports it as `mc_stderr`."""
    n_max = samples_per_problem(problems)
    rng = np.random.default_rng(settings.seed)
    schedule = n_schedule(n_max)
    unscored = [0.0] * n_max  # what a strategy without a scorer (majority) is given
    rows = [
        (
            p.classes[:n_max],
            p.correct[:n_max],
            {s.scorer: p.scores(s.scorer)[:n_max] for s in strategies if s.scorer is not None},
        )
        for p in problems
    ]
    points: dict[str, list[CurvePoint]] = {spec.label: [] for spec in strategies}
    for n in schedule:
        sampled = []
        for spec in strategies:
            exact = [majority_accuracy(c, ok, n) for c, ok, _ in rows] if _random_ties(spec) else [None]
            if all(value is not None for value in exact):
                points[spec.label].append(point(n, [float(v) for v in exact if v is not None], settings))
            else:
                sampled.append(spec)
        if not sampled:
            continue
        totals = np.zeros((len(sampled), len(rows)))
        squares = np.zeros((len(sampled), len(rows)))
        drawn, stderr = 0, np.zeros(len(sampled))
        exhaustive = math.comb(n_max, n) <= max(settings.exact_subsets, settings.subsets)
        while True:
            for p, (classes, correct, scores) in enumerate(rows):
                limit = settings.exact_subsets if exhaustive else settings.subsets
                subsets = sample_subsets(n_max, n, limit, rng)
                for s, spec in enumerate(sampled):
                    values = scores[spec.scorer] if spec.scorer is not None else unscored
                    for subset in subsets:
                        value = _subset_value(spec, classes, values, correct, subset)
                        totals[s, p] += value
                        squares[s, p] += value * value
                drawn_here = len(subsets)
            drawn += drawn_here
            if exhaustive:
                break
            variance = np.maximum(squares - totals**2 / drawn, 0.0) / max(drawn - 1, 1)
            stderr = np.sqrt(variance.sum(axis=1) / drawn) / len(rows)
            if stderr.max() <= settings.target_stderr or drawn >= settings.max_subsets:
                break
        for s, spec in enumerate(sampled):
            points[spec.label].append(point(n, list(totals[s] / drawn), settings, float(stderr[s])))
    return [Curve(spec.label, points[spec.label]) for spec in strategies]


def _random_ties(spec: StrategySpec) -> bool:
    """Majority voting whose ties are broken at random: its expectation is computed exactly."""
    return spec.name == "majority" and spec.options.get("ties", "random") == "random"


def _subset_value(
    spec: StrategySpec,
    classes: Sequence[int],
    values: Sequence[float],
    correct: Sequence[float],
    subset: Sequence[int],
) -> float:
    """The strategy's verifier score on one subset of a problem's responses."""
    chosen_classes = [classes[i] for i in subset]
    if _random_ties(spec):  # the expectation over the random tie-break, not one draw
        return statistics.fmean(correct[subset[i]] for i in majority_candidates(chosen_classes))
    # Pass@k over what it submits: one response for most strategies, up to k for BoM?k=...
    chosen = spec.submit(chosen_classes, [values[i] for i in subset])
    return max(correct[subset[i]] for i in chosen)
