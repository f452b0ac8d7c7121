"""The staleness bound of asynchronous training, as plain functions over samples.

A sample's staleness is how many policy updates happened between the start of its generation and the
update that trains on it: `version - sample.start_version`. The bound (ROLL Flash's async ratio, AReaL's
max_head_offpolicyness) is measured from the *start* of generation, so a response continued under newer
weights cannot launder its age.
"""

from __future__ import annotations

from collections.abc import Sequence

from reasonrl.rollout.samples import Sample


def split_by_staleness(
    samples: Sequence[Sample], version: int, max_staleness: int, group_size: int
) -> tuple[list[Sample], list[Sample]]:
    """(fresh, stale): whole groups the learner at `version` may train on, and those too old for it.

    A group is stale when any of its samples started before `version - max_staleness`; groups stay whole
    because group-relative advantages need every member. Order within each list is kept.
    """
    fresh: list[Sample] = []
    stale: list[Sample] = []
    oldest_allowed = version - max_staleness
    for start in range(0, len(samples), group_size):
        group = samples[start : start + group_size]
        target = fresh if min(s.start_version for s in group) >= oldest_allowed else stale
        target.extend(group)
    return fresh, stale


def staleness_metrics(samples: Sequence[Sample], version: int, max_staleness: int) -> dict[str, float]:
    """`async/staleness_mean`, `_max`, and the histogram `async/staleness_share_<k>` for k = 0..max_staleness
    (share of the trained samples that are k updates old)."""
    ages = [version - s.start_version for s in samples]
    count = max(1, len(ages))
    metrics = {
        "async/staleness_mean": sum(ages) / count,
        "async/staleness_max": float(max(ages, default=0)),
    }
    for age in range(max_staleness + 1):
        metrics[f"async/staleness_share_{age}"] = sum(a == age for a in ages) / count
    return metrics
