"""GRESO selective rollouts: how likely a prompt is to be skipped *before* it is rolled out.

A group whose responses all get the same reward (all correct or all wrong) has zero group-relative
advantage, so it adds no GRPO gradient; DAPO's dynamic sampling drops such groups, but only after paying for
their generation. GRESO (Zheng et al., arXiv 2506.02177, "Act Only When It Pays"; `Infini-AI-Lab/GRESO`)
observes that such prompts tend to stay zero-variance from one epoch to the next, and so skips them
probabilistically before rollout: the longer a prompt's recent streak of all-correct (or all-wrong) epochs,
the likelier it is skipped, but never with certainty, so a prompt the policy has started to get wrong
(or right) is still seen now and then. The skip rates p_easy and p_hard adapt after each step so that the
share of zero-variance groups that does get rolled out stays near a target.

These are the pure decisions; `reasonrl.rollout.greso.SelectiveRollouts` keeps the per-prompt traces,
draws the Bernoulli and adapts the rates. Rewards are assumed to lie in [0, 1] (1 = correct), which is
what the thresholds below mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

EASY_MEAN_REWARD = 0.98
"""A group with mean reward >= this counts as all correct (easy)."""
HARD_MEAN_REWARD = 0.11
"""A group with mean reward <= this counts as all wrong (hard)."""
MIN_KEEP_PROBABILITY = 0.01
"""The keep probability never falls below this, so no prompt is skipped deterministically."""


def streaks(trace: Sequence[float]) -> tuple[int, int]:
    """(z_easy, z_hard): how many of the most recent epochs in a row were easy, or were hard.

    trace: the prompt's mean group reward at each epoch it was rolled out, oldest first. The last entry
    decides which streak is counted, so at most one of the two is nonzero; both are 0 for an empty trace
    or when the last epoch was neither easy nor hard. A NaN mean is neither, and so ends a streak.
    """
    if not trace:
        return 0, 0
    if trace[-1] >= EASY_MEAN_REWARD:
        return _tail_length(trace, lambda mean: mean >= EASY_MEAN_REWARD), 0
    if trace[-1] <= HARD_MEAN_REWARD:
        return 0, _tail_length(trace, lambda mean: mean <= HARD_MEAN_REWARD)
    return 0, 0


def _tail_length(trace: Sequence[float], holds: Callable[[float], bool]) -> int:
    count = 0
    for mean in reversed(trace):
        if not holds(mean):
            break
        count += 1
    return count


def skip_probability(trace: Sequence[float], p_easy: float, p_hard: float) -> float:
    """P_skip = 1 − max(p^z, MIN_KEEP_PROBABILITY) for the prompt's current streak, 0 without one.

    p is p_easy for an easy streak (z = z_easy), p_hard for a hard one (z = z_hard): each further epoch in
    the streak multiplies the keep probability by p, down to the floor. p_easy and p_hard must be in (0, 1).
    """
    for name, p in (("p_easy", p_easy), ("p_hard", p_hard)):
        if not 0.0 < p < 1.0:
            raise ValueError(f"{name} must be in (0, 1) (a per-epoch keep probability), got {p}")
    z_easy, z_hard = streaks(trace)
    if z_easy:
        return 1.0 - max(p_easy**z_easy, MIN_KEEP_PROBABILITY)
    if z_hard:
        return 1.0 - max(p_hard**z_hard, MIN_KEEP_PROBABILITY)
    return 0.0


def adapt_probability(
    p: float, observed_share: float, target: float, *, step: float = 0.01, low: float = 0.05, high: float = 0.95
) -> float:
    """The keep base p after one training step, moved by `step` towards the target share, clamped to [low, high].

    observed_share: the share of rolled-out groups that were easy (for p_easy) or hard (for p_hard). At or
    above the target, too many such groups still get through, so p falls (a lower keep base skips more);
    below it, p rises (skip less, so prompts that have changed are noticed again).
    """
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"need 0 <= low <= high <= 1, got low={low}, high={high}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if math.isnan(observed_share):
        raise ValueError("observed_share is NaN; pass the share of recorded groups (0 when none were recorded)")
    moved = p - step if observed_share >= target else p + step
    return min(high, max(low, moved))
