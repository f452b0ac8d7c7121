"""Groups with a sample no reward could judge are set aside and counted, the batch is still filled, a run
where nothing can be judged stops; and in a streamed call scoring overlaps decoding without changing results."""

from __future__ import annotations

import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from reasonrl.config.schema import RewardTerm
from reasonrl.rewards import RewardPool
from reasonrl.rewards.failures import RewardsFailing
from reasonrl.rewards.pool import computed
from reasonrl.rollout.collect import PendingScores, score_samples, submit_scores
from reasonrl.rollout.greso import SelectiveRollouts
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.scheduler import SchedulerSettings

from .step_engine import StepEngine
from .test_rollout_scheduler import PROMPTS, Harness, groups_of, informative, partial

PLUGINS = Path(__file__).parents[1] / "rewards" / "reward_plugins.py"


def exclude_p1_and_p4(samples: list[Sample]) -> None:
    """Rewards 1, 0 within each group; the second sample of p1 and p4 cannot be judged."""
    informative(samples)
    for index, sample in enumerate(samples):
        if sample.prompt.id in ("p1", "p4") and index % 2 == 1:
            sample.reward_info = {"excluded": True, "error": "excluded: code: bwrap failed"}


@pytest.mark.parametrize("streamed", [False, True], ids=["in line", "streamed"])
def test_an_excluded_group_is_set_aside_counted_and_replaced(streamed: bool) -> None:
    settings = (
        partial(max_staleness=1)
        if streamed
        else SchedulerSettings(prompts_per_batch=2, group_size=2, max_staleness=0, max_extra_prompts=0)
    )
    harness = Harness(settings, lambda i: 3, score=exclude_p1_and_p4)
    batches = [harness.produce(index) for index in range(3)]
    # Every batch is still full: p1 and p4 are replaced by the next prompts of the stream.
    assert [groups_of(batch) for batch in batches] == [["p0", "p2"], ["p3", "p5"], ["p6", "p7"]]
    assert [len(batch.samples) for batch in batches] == [4, 4, 4]
    assert [batch.metrics["reward/excluded_groups"] for batch in batches] == [1.0, 1.0, 0.0]
    assert [batch.metrics["reward/excluded_samples"] for batch in batches] == [1.0, 1.0, 0.0]
    assert harness.retired == ["p1", "p4"]
    assert not any(s.excluded for batch in batches for s in batch.scored)  # kept out of the statistics


def test_an_excluded_group_reaches_neither_the_keep_rate_nor_the_greso_history() -> None:
    def p0_all_correct_p1_unjudged(samples: list[Sample]) -> None:
        informative(samples)
        for sample in samples:
            if sample.prompt.id == "p0":
                sample.reward = 1.0
            if sample.prompt.id == "p1":
                sample.reward_info = {"excluded": True, "error": "excluded: code: bwrap failed"}

    settings = SchedulerSettings(
        prompts_per_batch=2, group_size=2, max_staleness=0, dynamic_sampling=True, max_extra_prompts=4
    )
    selective = SelectiveRollouts(seed=0)
    harness = Harness(settings, lambda i: 3, score=p0_all_correct_p1_unjudged, selective=selective)
    batch = harness.produce(0)
    # p0 dropped, p1 set aside; the refill draws ceil(1.25 x 2 missing / keep rate 1.0) = 3: p2, p3, p4.
    assert groups_of(batch) == ["p2", "p3"] and harness.retired == ["p1", "p0"]
    assert (batch.metrics["reward/excluded_groups"], batch.metrics["reward/excluded_samples"]) == (1.0, 2.0)
    # 1 dropped of the 4 judged groups (p0, p2, p3, p4): (1.0 + 0.75) / 2; counting p1 would give 0.9.
    assert batch.metrics["dynamic_sampling/keep_rate"] == 0.875
    assert batch.metrics["dynamic_sampling/extra_prompts"] == 3.0
    assert sorted(selective.traces) == ["p0", "p2", "p3", "p4"]


def test_a_run_where_nothing_can_be_judged_stops_with_the_reason() -> None:
    def nothing_judged(samples: list[Sample]) -> None:
        for sample in samples:
            sample.reward_info = {"excluded": True, "error": "excluded: code: the sandbox did not start"}

    settings = SchedulerSettings(prompts_per_batch=2, group_size=2, max_staleness=0)
    harness = Harness(settings, lambda i: 3, score=nothing_judged)
    with pytest.raises(RewardsFailing) as failure:
        harness.produce(0)
    message = str(failure.value)
    assert "could not judge any response of the last 8 groups" in message
    assert "first reason: excluded: code: the sandbox did not start" in message
    assert "check sandbox.json in the run directory, run reasonrl on a machine where bubblewrap works" in message
    assert "allow_unsafe_code: true" in message
    assert len(harness.drawn) == 8  # it stopped instead of drawing prompts forever


class Watched:
    """A group's pending rewards, noting the decode step when they were submitted and when the scheduler
    collected them, and how long it waited for them then."""

    def __init__(self, pending: PendingScores, engine: StepEngine) -> None:
        self.pending, self.engine = pending, engine
        self.submitted, self.collected, self.waited = engine.steps, -1, 0.0

    def done(self) -> bool:
        return self.pending.done()

    def result(self) -> None:
        self.collected = self.engine.steps
        start = time.perf_counter()
        self.pending.result()
        self.waited = time.perf_counter() - start


def test_streamed_scoring_overlaps_decoding_and_changes_no_result() -> None:
    """A reward that takes 0.15 s per response, scored by a real pool's workers; in each generate call the four
    groups finish 15 decode steps (0.3 s) apart. Overlapped, only the last group of a call is waited for;
    scored in line (the blocking path), every group is. The batches are the same."""
    settings = SchedulerSettings(prompts_per_batch=4, group_size=2, max_staleness=1)
    slow = RewardTerm(name=f"{PLUGINS}:slow", options={"seconds": 0.15})
    with RewardPool([slow], workers=2, timeout_seconds=10) as pool:
        pool.score([PROMPTS[0]], ["warm-up"])  # worker start-up is not scoring time
        watched: list[Watched] = []

        def overlapped(samples: list[Sample]) -> Watched:
            watched.append(Watched(submit_scores(pool)(samples), harness.engine))
            return watched[-1]

        def blocking(samples: list[Sample]) -> Future[float]:
            return computed(score_samples, samples, pool)

        runs = []
        for submit in (overlapped, blocking):
            harness = Harness(settings, lambda i: 3 + 15 * (i % 4), submit=submit, should_abort=lambda: False)
            harness.engine.step_seconds = 0.02
            start = time.perf_counter()
            batches = [harness.produce(index) for index in range(2)]
            seconds = time.perf_counter() - start
            runs.append(([record(s) for b in batches for s in b.samples], [b.metrics for b in batches], seconds))
    (overlapped_samples, overlapped_metrics, overlapped_seconds), (blocking_samples, _, blocking_seconds) = runs
    assert overlapped_samples == blocking_samples
    # The texts are "3", "18", "33", "48" (token counts): the slow reward gives 1 to even lengths.
    assert [r[-1] for r in overlapped_samples[::2]] == [0.0, 1.0, 1.0, 1.0] * 2
    assert len(watched) == 8  # two calls of four groups
    early = [w for index, w in enumerate(watched) if index % 4 != 3]
    # Decoding went on while each of the first three groups of a call was scored, and its rewards were in
    # when the scheduler looked: it never waited for them.
    assert all(w.collected - w.submitted >= 15 for w in early)
    assert all(w.waited < 0.05 for w in early)
    # What was waited for: about the last group of each call (2 x 0.15 s) of the 8 x 0.15 s scored; the
    # blocking path pays all of it on top of decoding (2 calls x 48 steps x 0.02 s).
    assert sum(m["rollout/reward_seconds"] for m in overlapped_metrics) < 0.6
    assert overlapped_seconds < blocking_seconds - 0.6


def record(sample: Sample) -> tuple[str, list[int], list[int], float]:
    return (sample.prompt.id, sample.response_ids, sample.policy_version, sample.reward)
