"""A verifier that cannot judge (`RewardUnavailable`) excludes its sample: never a 0 that looks like a wrong
answer, scored once more before giving up, ignored by the failure watch, reported by evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

from reasonrl.config.schema import RewardTerm
from reasonrl.data import Prompt
from reasonrl.evaluation.annotate import score_stored
from reasonrl.evaluation.records import EvalSample
from reasonrl.evaluation.report import EvalReport, report_markdown
from reasonrl.rewards import RewardPool, RewardResult
from reasonrl.rewards.cat_labels import SynthesisLabelPool
from reasonrl.rewards.excluded import retry_excluded
from reasonrl.rewards.failures import RewardFailureWatch
from reasonrl.rewards.majority_labels import MajorityLabelPool
from reasonrl.rewards.single_response import score_sample
from reasonrl.rollout.collect import score_samples, submit_scores
from reasonrl.rollout.samples import Sample

UNJUDGEABLE = f"{Path(__file__).with_name('reward_plugins.py')}:unjudgeable"
PROMPT = Prompt(id="p0", answer="7", task=UNJUDGEABLE, text="3+4=")


def test_score_sample_marks_the_sample_excluded_with_the_reason() -> None:
    result = score_sample(((UNJUDGEABLE, 1.0, {}),), "nojudge-1", "7", {}, 5.0)
    assert result.excluded and result.reward == 0.0 and result.info == {"excluded": True}
    assert result.error == "excluded: unjudgeable: sandbox did not start for 'nojudge-1'"
    judged = score_sample(((UNJUDGEABLE, 1.0, {}),), "7", "7", {}, 5.0)
    assert not judged.excluded and judged.reward == 1.0 and judged.error is None


def test_a_weighted_reward_with_one_unavailable_term_is_excluded_whole() -> None:
    terms = ((UNJUDGEABLE, 0.5, {}), ("exact", 0.5, {}))
    result = score_sample(terms, "nojudge", "7", {}, 5.0)
    assert result.excluded and result.components == {}


def test_excluded_results_are_scored_once_more() -> None:
    calls: list[list[str]] = []

    def score(prompts: list[Prompt], responses: list[str]) -> list[RewardResult]:
        calls.append(list(responses))
        return [RewardResult(1.0) for _ in responses]

    first = [RewardResult(0.5), RewardResult(0.0, error="excluded: code: x", info={"excluded": True})]
    merged = retry_excluded(score, [PROMPT, PROMPT], ["a", "b"], first)
    assert calls == [["b"]] and [r.reward for r in merged] == [0.5, 1.0]
    assert retry_excluded(score, [PROMPT], ["a"], [RewardResult(0.5)])[0].reward == 0.5 and len(calls) == 1


def test_the_pool_scores_an_excluded_response_once_more() -> None:
    flaky = f"{Path(__file__).with_name('reward_plugins.py')}:flaky"
    prompt = Prompt(id="p", answer="flaky-a", task=flaky, text="?")
    with RewardPool(None, workers=0) as pool:
        results = pool.score([prompt, prompt], ["flaky-a", "7"])
    assert [(r.reward, r.excluded, r.error) for r in results] == [(1.0, False, None), (0.0, False, None)]


def sample(response: str) -> Sample:
    return Sample(PROMPT, 0, [1], [2], [0.0], [0], "stop", response)


def test_score_samples_keeps_the_exclusion_in_reward_info() -> None:
    samples = [sample("7"), sample("nojudge"), sample("8")]
    with RewardPool(None, workers=0) as pool:
        score_samples(samples, pool)
    assert [s.reward for s in samples] == [1.0, 0.0, 0.0]
    assert [s.excluded for s in samples] == [False, True, False]
    assert samples[1].reward_info["error"].startswith("excluded: unjudgeable: sandbox did not start")


def test_the_failure_watch_counts_excluded_samples_as_neither_failure_nor_success() -> None:
    watch = RewardFailureWatch(2)
    excluded = Sample(
        PROMPT, 0, [1], [2], [0.0], [0], "stop", "x", reward_info={"error": "excluded: c: r", "excluded": True}
    )
    failed = Sample(PROMPT, 0, [1], [2], [0.0], [0], "stop", "x", reward_info={"error": "TypeError: bad"})
    watch.observe([excluded, failed])
    assert watch.failed_in_a_row == 1  # the excluded sample did not reset the count
    watch.observe([excluded])
    assert watch.failed_in_a_row == 1  # nothing judged: nothing to count


def test_evaluation_counts_excluded_samples_and_says_so() -> None:
    stored = EvalSample(PROMPT, 0, [1], "nojudge", [2], [0.0], "stop", verifier_error="excluded: code: no bwrap")
    assert stored.excluded and stored.correct == 0.0
    assert EvalSample.from_json(stored.to_json()).excluded
    report = EvalReport("m", "d", 1, 1, 0.0, [], excluded_samples=3)
    assert report.to_json()["excluded_samples"] == 3
    assert EvalReport.from_json(report.to_json()).excluded_samples == 3
    assert "**3 samples could not be judged**" in report_markdown(report)


def test_a_majority_label_never_rests_on_a_response_nobody_could_judge() -> None:
    other = Prompt(id="p1", answer="7", task=UNJUDGEABLE, text="3+4=")
    unchecked = Prompt(id="p2", answer="7", task=UNJUDGEABLE, text="3+4=")
    with MajorityLabelPool(RewardPool(None, workers=0)) as pool:
        results = pool.score(
            [PROMPT] * 3 + [other] * 3 + [unchecked] * 2, ["7", "7", "nojudge"] + ["7", "8", "7"] + ["nojudge"] * 2
        )
    assert [r.excluded for r in results] == [True] * 3 + [False] * 3 + [True] * 2
    assert [r.reward for r in results] == [0.0] * 3 + [1.0, 0.0, 1.0] + [0.0] * 2
    reason = "excluded: unjudgeable: sandbox did not start for 'nojudge'"
    assert results[2].error == reason
    assert results[0].error == f"excluded: label: a response of its group could not be judged ({reason})"
    # The group's own diagnostics stay; a label whose check could not be judged has no `label_correct`.
    assert results[0].info == {"excluded": True, "pseudo_label": "7", "majority_share": 2 / 3, "label_correct": True}
    assert results[3].info == {"pseudo_label": "7", "majority_share": 2 / 3, "label_correct": True}
    assert results[6].info == {"excluded": True, "pseudo_label": "nojudge", "majority_share": 1.0}
    assert pool.submit([PROMPT], ["7"]).done()  # computed in line


def test_a_verdict_nobody_could_give_excludes_the_sample() -> None:
    # The shaped reward (exact) judges every response; the task's verifier cannot judge "nojudge".
    samples = [sample("7"), sample("nojudge")]
    with RewardPool([RewardTerm(name="exact")], workers=0) as pool, RewardPool(None, workers=0) as verify:
        pending = submit_scores(pool, verify)(samples)
        assert pending.done()
        pending.result()
    assert [s.reward for s in samples] == [1.0, 0.0]
    assert samples[0].reward_info["correct"] is True and not samples[0].excluded
    assert samples[1].excluded and "correct" not in samples[1].reward_info
    assert samples[1].reward_info["error"] == "excluded: unjudgeable: sandbox did not start for 'nojudge'"


def test_stored_evaluation_samples_are_scored_twice_then_reported_excluded() -> None:
    stored = [EvalSample(PROMPT, i, [1], text, [2], [0.0], "stop") for i, text in enumerate(["7", "nojudge", "8"])]
    with RewardPool(None, workers=0) as verifier:
        score_stored(stored, verifier, {})
    assert [(s.verifier_score, s.excluded, s.correct) for s in stored] == [
        (1.0, False, 1.0),
        (0.0, True, 0.0),
        (0.0, False, 0.0),
    ]
    assert stored[1].verifier_error == "excluded: unjudgeable: sandbox did not start for 'nojudge'"


def test_cat_labels_exclude_a_group_the_synthesis_read_an_unjudged_response_of() -> None:
    def synthesize(prompts: Sequence[Prompt], candidates: Sequence[Sequence[str]]) -> list[SimpleNamespace]:
        return [SimpleNamespace(text="7", tokens=1) for _ in prompts]

    other = Prompt(id="p1", answer="7", task=UNJUDGEABLE, text="3+4=")
    with SynthesisLabelPool(RewardPool(None, workers=0), synthesize) as pool:
        results = pool.score([PROMPT] * 3 + [other] * 2, ["7", "7", "nojudge", "7", "8"])
    assert [(r.excluded, r.reward) for r in results] == [(True, 0.0)] * 3 + [(False, 1.0), (False, 0.0)]
    assert results[0].info == {
        "excluded": True,
        "cat_label": "7",
        "cat_tokens": 1,
        "cat_agrees_with_majority": True,
        "cat_label_correct": True,
        "cat_majority_correct": True,
    }
    assert pool.submit([other], ["7"]).done()
