"""The async scheduler on a scripted engine: partial rollouts stop at a full batch and continue later with
per-token versions, the staleness bound restarts old responses, groups are filtered as they finish,
GRESO skips before generating, and in-flight responses survive a checkpoint."""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable

import pytest

from reasonrl.data import Prompt, PromptSampler
from reasonrl.engines.base import SamplingSettings
from reasonrl.rewards.pool import computed
from reasonrl.rollout.greso import SelectiveRollouts
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.scheduler import ProducedBatch, RolloutScheduler, SchedulerSettings, Scores

from .step_engine import StepEngine

PROMPTS = [Prompt(id=f"p{i}", answer=i, task="exact", text=f"q{i}") for i in range(400)]


def informative(samples: list[Sample]) -> None:
    """Rewards 1, 0, 1, 0 ... within every group: every group carries signal."""
    for index, sample in enumerate(samples):
        sample.reward = float(index % 2 == 0)


class Harness:
    """A scheduler with the producer's bookkeeping: what was drawn, retired, and is still outstanding."""

    def __init__(
        self,
        settings: SchedulerSettings,
        lengths: Callable[[int], int],
        *,
        score: Callable[[list[Sample]], None] = informative,
        submit: Callable[[list[Sample]], Scores] | None = None,
        selective: SelectiveRollouts | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> None:
        """`score` fills rewards in place and is called at once; `submit`, when given, is the scheduler's own
        submit-style `score` (a reward pool's, scoring while decoding goes on)."""
        self.engine = StepEngine(lambda ids: lengths(ids[0]))
        self.sampler = PromptSampler(PROMPTS, shuffle=False)
        self.drawn: list[str] = []
        self.retired: list[str] = []
        self.scheduler = RolloutScheduler(
            self.engine,  # type: ignore[arg-type]
            lambda prompt: [int(prompt.id[1:])],  # type: ignore[arg-type]
            SamplingSettings(max_new_tokens=64),
            settings,
            score=submit or (lambda samples: computed(score, samples)),
            draw=self.draw,
            discard=lambda prompt: self.retired.append(prompt.id),
            lock=threading.Condition(),
            selective=selective,
            should_abort=should_abort,
        )

    def draw(self, count: int) -> list[Prompt]:
        prompts = self.sampler.next_batch(count)
        self.drawn += [p.id for p in prompts]
        return prompts

    def produce(self, index: int) -> ProducedBatch:
        self.engine.version = index  # the learner published version `index` before batch `index`
        return self.scheduler.produce(index)


def groups_of(batch: ProducedBatch, size: int = 2) -> list[str]:
    return [s.prompt.id for s in batch.samples[::size]]


def partial(max_staleness: int = 3, **kwargs) -> SchedulerSettings:  # type: ignore[no-untyped-def]
    return SchedulerSettings(
        prompts_per_batch=2,
        group_size=2,
        max_staleness=max_staleness,
        partial_rollouts=True,
        overprovision=2.0,
        **kwargs,
    )


def every_fourth_long(long: int) -> Callable[[int], int]:
    return lambda i: long if i % 4 == 3 else 3


def test_partial_rollouts_stop_at_a_full_batch_and_continue_under_newer_versions() -> None:
    harness = Harness(partial(), every_fourth_long(8))
    first = harness.produce(0)
    # p0..p3 in flight; p0-p2 end at step 3, the batch is full, p3 is cut off after 3 of its 8 tokens.
    assert groups_of(first) == ["p0", "p1"] and harness.engine.steps == 3
    assert first.metrics["partial/aborted_requests"] == 2 and first.metrics["partial/in_flight_groups"] == 2
    assert groups_of(harness.produce(1)) == ["p2", "p4"]  # p2 was ready; p3 went on for 3 more tokens
    third = harness.produce(2)
    assert groups_of(third) == ["p3", "p5"]
    long_one = third.samples[0]
    assert long_one.response_ids == [7] * 7 + [0] and long_one.finish_reason == "stop"
    assert long_one.policy_version == [0, 0, 0, 1, 1, 1, 2, 2] and long_one.start_version == 0
    assert third.metrics["partial/continued_samples"] == 2
    assert [s.group_index for s in third.samples] == [0, 0, 1, 1]


def test_partial_rollouts_take_fewer_decode_steps_than_waiting_for_the_long_tail() -> None:
    def steps(settings: SchedulerSettings) -> tuple[int, int]:
        harness = Harness(settings, every_fourth_long(12))
        samples = sum(len(harness.produce(index).samples) for index in range(12))
        return harness.engine.steps, samples

    whole = SchedulerSettings(prompts_per_batch=2, group_size=2, max_staleness=3)
    (partial_steps, partial_samples), (whole_steps, whole_samples) = steps(partial()), steps(whole)
    assert partial_samples == whole_samples == 48
    assert partial_steps < 0.6 * whole_steps  # every other sync batch waits 12 steps for its long group


def test_responses_begun_before_the_staleness_bound_restart_from_scratch() -> None:
    # A response can only be that old when batches were skipped (a batch the learner dropped, a resume):
    # batch 0 leaves p3 unfinished at version 0, and the next batch produced is trained at version 2.
    harness = Harness(partial(max_staleness=1), every_fourth_long(30))
    harness.produce(0)
    (long_group,) = [g for g in harness.scheduler.groups if g.prompt.id == "p3"]
    assert long_group.members[0].versions == [0, 0, 0]
    third = harness.produce(2)  # trained at version 2: nothing may have begun before version 1
    # p3 (3 tokens each) and p2 (finished at version 0, not chosen for batch 0) are both too old now.
    assert third.metrics["partial/restarted_samples"] == 4 and third.metrics["partial/dropped_tokens"] == 12
    assert all(m.start_version == 2 and m.versions == [2, 2, 2] for m in long_group.members)
    for index in range(3, 12):
        batch = harness.produce(index)
        assert all(s.start_version >= index - 1 for s in batch.samples)


def test_at_the_bound_leftovers_the_next_batch_would_restart_are_finished_instead() -> None:
    # The producer at its admission bound with max_staleness 2 keeps one version of headroom: batch k is
    # generated by version k - 1. What batch k leaves unfinished began at k - 1 and is continued in batch
    # k + 1; whatever is still unfinished then would be too old for batch k + 2, so batch k + 1 finishes it
    # (only those rows keep decoding) and trains it first. Before, every leftover was restarted at the
    # bound and the long responses (30 tokens, every fourth prompt) were never trained.
    harness = Harness(partial(max_staleness=2), every_fourth_long(30))
    trained: list[str] = []
    continued = 0.0
    for index in range(1, 13):
        harness.engine.version = index - 1
        batch = harness.scheduler.produce(index)
        assert all(index - s.start_version <= 2 for s in batch.samples)
        assert batch.metrics["partial/dropped_tokens"] == 0
        trained += groups_of(batch)
        continued += batch.metrics["partial/continued_samples"]
    assert batch.metrics["partial/dropped_token_share"] == 0.0
    assert {"p3", "p7", "p11"} <= set(trained)
    assert continued > 0


def test_dynamic_sampling_drops_a_group_as_it_finishes_and_refills_from_the_stream() -> None:
    def every_third_all_correct(samples: list[Sample]) -> None:
        for index, sample in enumerate(samples):
            sample.reward = 1.0 if int(sample.prompt.id[1:]) % 3 == 0 else float(index % 2 == 0)

    settings = SchedulerSettings(
        prompts_per_batch=2, group_size=2, max_staleness=0, dynamic_sampling=True, max_extra_prompts=4
    )
    harness = Harness(settings, lambda i: 3, score=every_third_all_correct)
    batch = harness.produce(0)
    # p0 is dropped as it finishes; the refill draws 1 missing / keep rate 1.0 x 1.25 -> 2 prompts: p2, p3.
    assert groups_of(batch) == ["p1", "p2"] and harness.retired == ["p0", "p3"]
    assert {k: v for k, v in batch.metrics.items() if k.startswith("dynamic_sampling/")} == {
        "dynamic_sampling/keep_rate": 0.75,  # (1.0 + 2 kept of 4 finished) / 2
        "dynamic_sampling/dropped_groups": 2.0,
        "dynamic_sampling/extra_prompts": 2.0,
        "dynamic_sampling/kept_groups": 2.0,
        "dynamic_sampling/rounds": 2.0,
        "dynamic_sampling/gave_up": 0.0,
    }
    assert all(len({s.reward for s in batch.samples[i : i + 2]}) == 2 for i in (0, 2))


def test_dynamic_sampling_out_of_budget_trains_on_what_it_kept_or_on_the_unfiltered_draw(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def all_correct(samples: list[Sample]) -> None:
        for sample in samples:
            sample.reward = 1.0

    settings = SchedulerSettings(
        prompts_per_batch=2, group_size=2, max_staleness=0, dynamic_sampling=True, max_extra_prompts=2
    )
    harness = Harness(settings, lambda i: 3, score=all_correct)
    batch = harness.produce(0)
    # Nothing kept: the first groups filtered (the first draw, in draw order) are the batch, unfiltered.
    assert groups_of(batch) == ["p0", "p1"] and harness.retired == ["p2", "p3"]  # trained on, so not retired
    assert batch.metrics["dynamic_sampling/gave_up"] == 1.0 and batch.metrics["dynamic_sampling/kept_groups"] == 0
    assert "step 1: dynamic sampling kept 0 of 2 groups after 2 extra prompts" in caplog.text
    assert (
        "dynamic_sampling_max_extra_prompts" in caplog.text and "training on filtered groups unfiltered" in caplog.text
    )


def test_a_full_batch_on_the_first_call_draws_nothing_more() -> None:
    settings = SchedulerSettings(
        prompts_per_batch=3, group_size=2, max_staleness=0, dynamic_sampling=True, max_extra_prompts=10
    )
    harness = Harness(settings, lambda i: 3)
    batch = harness.produce(0)
    assert harness.drawn == ["p0", "p1", "p2"] and harness.engine.calls == [(0, 6)]
    assert [s.group_index for s in batch.samples] == [0, 0, 1, 1, 2, 2] and batch.scored == batch.samples
    assert {k: v for k, v in batch.metrics.items() if k.startswith("dynamic_sampling/")} == {
        "dynamic_sampling/keep_rate": 1.0,
        "dynamic_sampling/dropped_groups": 0.0,
        "dynamic_sampling/extra_prompts": 0.0,
        "dynamic_sampling/kept_groups": 3.0,
        "dynamic_sampling/rounds": 1.0,
        "dynamic_sampling/gave_up": 0.0,
    }


def test_out_of_budget_it_trains_on_the_groups_it_kept_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    def only_p0_informative(samples: list[Sample]) -> None:
        for index, sample in enumerate(samples):
            sample.reward = float(index % 2 == 0) if sample.prompt.id == "p0" else 0.0

    settings = SchedulerSettings(
        prompts_per_batch=3, group_size=2, max_staleness=0, dynamic_sampling=True, max_extra_prompts=1
    )
    harness = Harness(settings, lambda i: 3, score=only_p0_informative)
    with caplog.at_level(logging.WARNING):
        batch = harness.produce(6)
    # The first call keeps p0 of p0-p2; the budget of 1 extra prompt buys p3, which is dropped too.
    assert groups_of(batch) == ["p0"] and [s.group_index for s in batch.samples] == [0, 0]
    assert harness.retired == ["p1", "p2", "p3"] and len(batch.scored) == 8
    assert batch.metrics["dynamic_sampling/gave_up"] == 1.0 and batch.metrics["dynamic_sampling/extra_prompts"] == 1.0
    assert "step 7: dynamic sampling kept 1 of 3 groups after 1 extra prompts" in caplog.text
    assert "training on the groups it kept" in caplog.text


def test_dynamic_sampling_with_partial_rollouts_aborts_only_once_the_kept_groups_fill_the_batch() -> None:
    def long_ones_informative(samples: list[Sample]) -> None:
        for index, sample in enumerate(samples):
            sample.reward = float(index % 2 == 0) if len(sample.response_ids) > 3 else 0.0

    harness = Harness(
        partial(dynamic_sampling=True, max_extra_prompts=8), lambda i: 3 + i % 3, score=long_ones_informative
    )
    batch = harness.produce(0)
    assert len(batch.samples) == 4 and all(len(s.response_ids) > 3 for s in batch.samples)
    assert batch.metrics["dynamic_sampling/dropped_groups"] >= 1 and set(harness.retired) <= {"p0", "p3", "p6", "p9"}


def test_selective_rollouts_skip_prompts_that_were_all_correct_before_generating_them() -> None:
    selective = SelectiveRollouts(seed=0)
    for _ in range(6):  # 0.5 ** 6 keep probability: skipped with probability 0.984
        for i in range(0, 20, 2):
            selective.record(f"p{i}", [1.0, 1.0])
    harness = Harness(
        SchedulerSettings(prompts_per_batch=2, group_size=2, max_staleness=0), lambda i: 3, selective=selective
    )
    batch = harness.produce(0)
    assert all(int(s.prompt.id[1:]) % 2 == 1 for s in batch.samples)  # the easy even prompts were skipped
    assert harness.retired == ["p0", "p2"] and batch.metrics["greso/skipped_prompts"] == 2


def test_responses_in_flight_survive_a_checkpoint_round_trip() -> None:
    original = Harness(partial(), every_fourth_long(8))
    original.produce(0)
    state = json.loads(json.dumps(original.scheduler.state_dict()))
    restored = Harness(partial(), every_fourth_long(8))
    in_pool = restored.scheduler.load_state_dict(state, {p.id: p for p in PROMPTS})
    restored.sampler.load_state_dict(original.sampler.state_dict())
    assert [p.id for p in in_pool] == ["p2", "p3"]
    for index in (1, 2):
        a, b = original.produce(index), restored.produce(index)
        assert [(s.prompt.id, s.response_ids, s.policy_version, s.start_version) for s in a.samples] == [
            (s.prompt.id, s.response_ids, s.policy_version, s.start_version) for s in b.samples
        ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_drawn_prompt_is_trained_retired_or_still_in_flight_exactly_once(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([2, 3, 4, 5, 20]) for _ in PROMPTS]

    def noisy(samples: list[Sample]) -> None:
        for sample in samples:
            sample.reward = float(rng.random() < 0.5)

    settings = partial(max_staleness=rng.choice([1, 2]), dynamic_sampling=True, max_extra_prompts=6)
    harness = Harness(settings, lambda i: lengths[i], score=noisy)
    trained: list[str] = []
    for index in range(15):
        batch = harness.produce(index)
        trained += groups_of(batch)
        assert all(s.start_version >= index - settings.max_staleness for s in batch.samples)
    in_flight = [g.prompt.id for g in harness.scheduler.groups]
    assert sorted(trained + harness.retired + in_flight) == sorted(harness.drawn)
    assert len(set(trained)) == len(trained)


def test_refills_grow_with_the_observed_drop_rate_so_a_batch_takes_few_generate_calls() -> None:
    def one_in_five_informative(samples: list[Sample]) -> None:
        for index, sample in enumerate(samples):
            sample.reward = float(index % 2 == 0) if int(sample.prompt.id[1:]) % 5 == 0 else 1.0

    settings = SchedulerSettings(
        prompts_per_batch=4, group_size=2, max_staleness=0, dynamic_sampling=True, max_extra_prompts=64
    )
    harness = Harness(settings, lambda i: 3, score=one_in_five_informative)
    batches = [harness.produce(index) for index in range(12)]
    assert all(b.metrics["dynamic_sampling/gave_up"] == 0 for b in batches)
    assert batches[-1].metrics["dynamic_sampling/keep_rate"] == pytest.approx(0.2, abs=0.05)
    # Refilling only the missing groups would keep ~1 in 5 per round: about 7 rounds per batch.
    assert sum(b.metrics["dynamic_sampling/rounds"] for b in batches[4:]) / 8 <= 3


def test_a_pause_without_partial_rollouts_never_carries_a_response_into_the_next_batch() -> None:
    # p0 is filtered out, so the refill draws p2 and p3 (8 tokens). A pause lands after step 6: p2 has just
    # finished, so two groups are ready, and p3 is cut at 3 tokens. Before, the batch ended there and p3 was
    # continued by the next batch under newer weights (a mixed-version response no config asked for).
    def all_correct_p0(samples: list[Sample]) -> None:
        for index, sample in enumerate(samples):
            sample.reward = 1.0 if sample.prompt.id == "p0" else float(index % 2 == 0)

    settings = SchedulerSettings(
        prompts_per_batch=2, group_size=2, max_staleness=1, dynamic_sampling=True, max_extra_prompts=4
    )
    harness = Harness(settings, lambda i: 8 if i == 3 else 3, score=all_correct_p0)
    paused = []

    def pause_once() -> bool:
        if harness.engine.steps == 6 and not paused:
            paused.append(True)
            return True
        return False

    harness.scheduler.should_abort = pause_once
    first = harness.produce(0)
    assert paused and first.metrics["rollout/interrupted_calls"] == 1.0
    assert groups_of(first) == ["p1", "p2"]
    second = harness.produce(1)
    assert groups_of(second)[0] == "p3"
    assert all(s.policy_version == [0] * 8 for s in second.samples[:2])  # generated whole at version 0


def test_at_staleness_1_leftovers_are_not_finished_beyond_the_batch() -> None:
    # No headroom at max_staleness 1: at the bound every unfinished group is expiring, and finishing them all
    # would decode every long tail for groups the batch has no room for (3.5x the decode steps in a review).
    harness = Harness(partial(max_staleness=1), every_fourth_long(30))
    for index in range(1, 9):
        harness.engine.version = index - 1
        harness.scheduler.produce(index)
    assert harness.engine.steps <= 8 * 3 + 30  # short groups end in 3 steps; no batch waits for a long tail
