"""DAPO dynamic sampling: keep only groups with differing rewards, and draw more prompts to refill the batch.

The decision (which groups carry signal) is the pure `algorithms.group_filter.informative_groups`; this
module is the bookkeeping around it: how many more prompts to draw, when to give up, and what to report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from reasonrl.algorithms.group_filter import informative_groups, kept_rows
from reasonrl.rollout.samples import Sample

logger = logging.getLogger(__name__)


@dataclass
class FilteredGroups:
    """The groups to train on, every sample generated on the way, and what the filtering cost."""

    samples: list[Sample]
    generated: list[Sample]
    metrics: dict[str, float]


def keep_informative_groups(
    draw: Callable[[int], list[Sample]],
    prompts: int,
    group_size: int,
    *,
    max_extra_prompts: int,
    step: int,
) -> FilteredGroups:
    """Draw `prompts` groups with `draw(n)` (n prompts -> n scored groups), drop those whose rewards are all
    equal, and draw as many prompts as are missing until `prompts` groups are kept or `max_extra_prompts`
    extra prompts have been drawn.

    Each refill draws exactly the number of groups still missing (capped by the remaining budget), so no
    kept group is ever thrown away. Out of budget, the step trains on the groups it has (a smaller batch)
    and says so in the log; if it kept none at all it trains on the first draw unfiltered, so the step
    still happens (its policy gradient is zero, but KL, entropy and a critic still learn from it). Kept
    groups are renumbered 0..K−1 in `group_index`.

    Metrics: dynamic_sampling/dropped_groups, extra_prompts, kept_groups, rounds (generate calls),
    gave_up (1 when the budget ran out before the batch was full).
    """
    generated: list[Sample] = []
    kept: list[Sample] = []
    first: list[Sample] = []
    extra = dropped = rounds = 0
    missing = prompts
    while missing > 0:
        count = missing if rounds == 0 else min(missing, max_extra_prompts - extra)
        if count == 0:
            break
        samples = draw(count)
        if rounds > 0:
            extra += count
        else:
            first = samples
        rounds += 1
        generated.extend(samples)
        keep = informative_groups(torch.tensor([s.reward for s in samples], dtype=torch.float64), group_size)
        dropped += int((~keep).sum())
        kept.extend(samples[i] for i in kept_rows(keep, group_size).tolist())
        missing = prompts - len(kept) // group_size
    gave_up = missing > 0
    if gave_up:
        logger.warning(
            "step %d: dynamic sampling kept %d of %d groups after %d extra prompts "
            "(algorithm.dynamic_sampling_max_extra_prompts); %s",
            step,
            len(kept) // group_size,
            prompts,
            extra,
            "training on the groups it kept"
            if kept
            else "no group had differing rewards, so training on the first draw unfiltered",
        )
    chosen = kept or first
    for index, sample in enumerate(chosen):
        sample.group_index = index // group_size
    metrics = {
        "dynamic_sampling/dropped_groups": float(dropped),
        "dynamic_sampling/extra_prompts": float(extra),
        "dynamic_sampling/kept_groups": float(len(kept) // group_size),
        "dynamic_sampling/rounds": float(rounds),
        "dynamic_sampling/gave_up": float(gave_up),
    }
    return FilteredGroups(chosen, generated, metrics)
