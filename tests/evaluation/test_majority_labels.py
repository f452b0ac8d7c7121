"""TTRL's majority pseudo-labels: who is rewarded, the diagnostics, and the config switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonrl.config import ConfigError, load_config
from reasonrl.data import Prompt, load_prompts
from reasonrl.pipelines.sync import train
from reasonrl.rewards import RewardPool
from reasonrl.rewards.majority_labels import MajorityLabelPool, training_reward_pool
from reasonrl.rollout.collect import score_samples
from reasonrl.rollout.samples import Sample
from reasonrl.tracking import read_metrics


def test_each_group_is_scored_against_its_majority_answer() -> None:
    first, second = load_prompts("sum?size=2")
    with MajorityLabelPool(RewardPool(None, workers=0)) as pool:
        results = pool.score(
            [first] * 4 + [second] * 3,
            [str(first.answer)] * 2 + ["77", ""] + ["98", "99", "99"],
        )
    assert [r.reward for r in results] == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    assert results[0].info == {"pseudo_label": str(first.answer), "majority_share": 0.5, "label_correct": True}
    assert results[4].info["pseudo_label"] == "99" and results[4].info["label_correct"] is False


def test_equivalent_math_answers_share_the_label() -> None:
    prompt = Prompt(id="m", answer="1/2", task="math", text="half?")
    with MajorityLabelPool(RewardPool(None, workers=0)) as pool:
        results = pool.score([prompt] * 3, ["\\boxed{0.5}", "The answer is \\frac{1}{2}.", "\\boxed{3}"])
    assert [r.reward for r in results] == [1.0, 1.0, 0.0]
    assert results[0].info["majority_share"] == pytest.approx(2 / 3) and results[0].info["label_correct"]


def test_a_group_without_answers_scores_zero_and_countdown_is_refused() -> None:
    with MajorityLabelPool(RewardPool(None, workers=0)) as pool:
        prompt = Prompt(id="m", answer="2", task="math", text="?", meta={"verifier_options": {}})
        assert [r.reward for r in pool.score([prompt] * 2, ["no idea", "none"])] == [0.0, 0.0]
        countdown = Prompt(id="c", answer={"target": 3, "numbers": [1, 2]}, task="countdown", text="?")
        with pytest.raises(ValueError, match="labels: answer"):
            pool.score([countdown] * 2, ["1+2", "2+1"])


def test_correctness_comes_from_the_verifier_where_a_reference_exists_and_from_the_majority_elsewhere() -> None:
    # With a verifier pool, `correct` is the verifier's verdict against the reference; a prompt without one
    # (TTRL on unlabelled data) cannot be verified, so it keeps the majority reward's judgement rather than
    # being marked wrong on every sample (which GRESO would read as "all hard").
    labelled = Prompt(id="l", answer="7", task="exact", text="3+4=")
    unlabelled = Prompt(id="u", answer=None, task="exact", text="2+2=")
    samples = [
        Sample(
            prompt=p,
            group_index=0,
            prompt_ids=[],
            response_ids=[],
            behaviour_logprobs=[],
            policy_version=[],
            finish_reason="stop",
            response_text=text,
        )
        for p, text in [(labelled, "8"), (labelled, "8"), (labelled, "7"), (unlabelled, "4"), (unlabelled, "4")]
    ]
    with MajorityLabelPool(RewardPool(None, workers=0)) as pool, RewardPool(None, workers=0) as verify:
        score_samples(samples, pool, verify)
    assert [s.reward for s in samples] == [1.0, 1.0, 0.0, 1.0, 1.0]  # the majority answers 8 and 4 win
    assert [s.correct for s in samples] == [False, False, True, True, True]
    assert "correct" not in samples[3].reward_info


def test_config_selects_majority_labels() -> None:
    config = load_config(None, ["algorithm.reward.labels=majority", "algorithm.reward.workers=0"])
    pool = training_reward_pool(config.algorithm.reward)
    try:
        assert isinstance(pool, MajorityLabelPool)
    finally:
        pool.close()
    with pytest.raises(ConfigError, match="majority"):
        load_config(None, ["algorithm.reward.labels=majorty"])


@pytest.mark.slow
def test_reasonrl_train_runs_on_majority_labels(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    quick = [
        "model.path=builtin:tiny",
        "data.train=sum?size=64",
        "data.format.template=plain",
        "rollout.group_size=4",
        "rollout.batch_size=16",
        "rollout.max_new_tokens=4",
        "algorithm.reward.workers=0",
        "algorithm.reward.labels=majority",
        "train.steps=2",
        "train.num_threads=1",
        "eval.max_prompts=8",
        "logging.progress=false",
        "logging.plots=false",
        "logging.tensorboard=false",
        f"logging.run_dir={run_dir}",
    ]
    summary = train(load_config(None, quick))
    assert summary["steps"] == 2
    steps = [row for row in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in row]
    assert all(0 < row["ttrl/majority_share"] <= 1 and "ttrl/label_accuracy" in row for row in steps)
