"""Scorers: the policy's likelihood, reward functions by name, and a sequence-classification reward model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from reasonrl.data import load_prompts
from reasonrl.evaluation.scorers import build_scorer, check_scorer


def test_logprob_and_reward_scorers() -> None:
    prompts = load_prompts("sum?size=2")
    logprob = build_scorer("logprob")
    assert logprob(prompts, ["a", "b"], [[math.log(0.5)] * 3, []]) == pytest.approx([0.5, 0.0])
    exact = build_scorer("reward:exact")
    try:
        assert exact(prompts, [str(prompts[0].answer), "nope"], [[], []]) == [1.0, 0.0]
    finally:
        exact.close()


def test_unknown_scorers_are_refused_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="unknown scorer"):
        check_scorer("likelihood")
    with pytest.raises(ValueError, match="unknown verifier"):
        check_scorer("reward:mathh")


def test_reward_model_folder_scores_in_unit_interval(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = AutoConfig.from_pretrained(tiny_model_dir, num_labels=1)
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(tmp_path / "rm")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "rm")
    scorer = build_scorer(f"rm:{tmp_path / 'rm'}")
    prompts = load_prompts("sum?size=3")
    scores = scorer(prompts, ["1", "22", "-333"], [[], [], []])
    assert len(scores) == 3 and all(0 < s < 1 for s in scores)
    assert scorer(prompts[:1], ["1"], [[]]) == pytest.approx(scores[:1], abs=1e-5)  # padding does not matter
