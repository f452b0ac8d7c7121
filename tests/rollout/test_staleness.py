"""The staleness bound as pure functions: which groups a learner at version v may train on, and the report."""

from __future__ import annotations

import pytest

from reasonrl.data import Prompt
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.staleness import split_by_staleness, staleness_metrics


def _sample(prompt_id: str, start_version: int) -> Sample:
    return Sample(
        prompt=Prompt(id=prompt_id, answer="a", task="exact", text="q"),
        group_index=0,
        prompt_ids=[1],
        response_ids=[2],
        behaviour_logprobs=[-1.0],
        policy_version=[start_version],
        finish_reason="stop",
        response_text="a",
        start_version=start_version,
    )


def test_groups_older_than_the_bound_are_split_off_whole() -> None:
    samples = [_sample("a", 5), _sample("a", 5), _sample("b", 3), _sample("b", 4), _sample("c", 4), _sample("c", 4)]
    fresh, stale = split_by_staleness(samples, version=6, max_staleness=2, group_size=2)
    assert [s.prompt.id for s in fresh] == ["a", "a", "c", "c"]
    assert [s.prompt.id for s in stale] == ["b", "b"]  # one member started at 3 < 6 - 2: the whole group goes


def test_staleness_zero_keeps_only_samples_of_the_current_version() -> None:
    fresh, stale = split_by_staleness([_sample("a", 2), _sample("b", 1)], version=2, max_staleness=0, group_size=1)
    assert ([s.prompt.id for s in fresh], [s.prompt.id for s in stale]) == (["a"], ["b"])


def test_metrics_report_the_age_histogram() -> None:
    samples = [_sample("a", 4), _sample("b", 3), _sample("c", 3), _sample("d", 2)]
    metrics = staleness_metrics(samples, version=4, max_staleness=2)
    assert metrics == pytest.approx(
        {
            "async/staleness_mean": 1.0,
            "async/staleness_max": 2.0,
            "async/staleness_share_0": 0.25,
            "async/staleness_share_1": 0.5,
            "async/staleness_share_2": 0.25,
        }
    )
