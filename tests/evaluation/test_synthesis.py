"""Synthesis from N samples: the prompt, the `synthesize` test-time strategy, and CaT rewards for training."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reasonrl.cli.app import app
from reasonrl.config import ConfigError, load_config
from reasonrl.data import Prompt, load_prompts
from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings
from reasonrl.evaluation.strategies import generates_responses, parse_strategy
from reasonrl.pipelines.sync import train
from reasonrl.rewards import RewardPool
from reasonrl.rewards.cat_labels import SynthesisLabelPool
from reasonrl.rewards.majority_labels import training_reward_pool
from reasonrl.rollout.metrics import rollout_metrics
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.synthesis import PLAIN_SUFFIX, Synthesizer, render_synthesis, synthesis_message
from reasonrl.tracking import read_metrics


class CharTokenizer:
    """One token per character; no chat template unless given one."""

    def __init__(self, chat_template: str | None = None) -> None:
        self.chat_template = chat_template

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return "".join(map(chr, ids))

    def apply_chat_template(self, messages, tokenize: bool, add_generation_prompt: bool) -> str:  # type: ignore[no-untyped-def]
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"


class ScriptedEngine:
    """Answers each request with the next scripted text; remembers the prompts and sampling it was given."""

    version = 0

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []
        self.sampling: SamplingSettings | None = None

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[Generation]:
        self.sampling = sampling
        out = []
        for request in requests:
            self.prompts.append("".join(map(chr, request.prompt_ids)))
            text = self.answers.pop(0)
            out.append(Generation([ord(c) for c in text], [-0.1] * len(text), "stop"))
        return out

    def close(self) -> None:
        """Nothing to release."""


def test_the_prompt_lists_the_question_and_at_most_m_candidates() -> None:
    prompt = Prompt(id="p", answer="7", task="exact", text="3+4=")
    message = synthesis_message(prompt, ["7", " 8 ", "9"], max_candidates=2)
    assert message.startswith("3+4=\n\nHere are 2 candidate solutions")
    assert "Solution 1:\n7\n\nSolution 2:\n8\n\n" in message and "Solution 3" not in message
    assert render_synthesis(prompt, ["7"], CharTokenizer(), max_candidates=2).endswith(PLAIN_SUFFIX)
    chat = render_synthesis(prompt, ["7"], CharTokenizer("{{ messages }}"), max_candidates=2)
    assert chat.startswith("<user>3+4=") and chat.endswith("</user><assistant>")

    engine = ScriptedEngine(["7", "12"])
    synthesize = Synthesizer(engine, CharTokenizer(), max_candidates=2, max_new_tokens=9)  # type: ignore[arg-type]
    other = Prompt(id="q", answer="12", task="exact", text="5+7=")
    results = synthesize([prompt, other], [["7", "8", "9"], ["12"]])
    assert [(r.text, r.tokens) for r in results] == [("7", 1), ("12", 2)]
    assert engine.prompts[0] == render_synthesis(prompt, ["7", "8"], CharTokenizer(), max_candidates=2)
    assert results[0].prompt_tokens == len(engine.prompts[0])
    assert engine.sampling is not None and engine.sampling.greedy and engine.sampling.max_new_tokens == 9


def test_synthesize_is_a_generating_strategy_with_checked_options() -> None:
    spec = parse_strategy("synthesize?m=2&max_new_tokens=8&model=runs/x/model")
    assert generates_responses("synthesize") and spec.label == "synthesize(m=2, max_new_tokens=8, model=runs/x/model)"
    assert spec.synthesize_options().m == 2 and spec.synthesize_options().model == "runs/x/model"
    with pytest.raises(ValueError, match="m"):
        parse_strategy("synthesize?m=0")
    with pytest.raises(ValueError, match="mm"):
        parse_strategy("synthesize?mm=2")


def test_cat_labels_are_the_synthesized_answer_and_rewards_follow_equivalence() -> None:
    first, second = load_prompts("sum?size=2")
    right = str(first.answer)
    # group 1: the anchor writes the right answer although the majority is wrong; group 2: it writes none.
    engine = ScriptedEngine([f"{right}", ""])
    synthesize = Synthesizer(engine, CharTokenizer(), max_candidates=3)  # type: ignore[arg-type]
    prompts = [first] * 4 + [second] * 3
    responses = ["77", "77", right, "", "98", "99", "99"]
    with SynthesisLabelPool(RewardPool(None, workers=0), synthesize) as pool:
        results = pool.score(prompts, responses)
    assert [r.reward for r in results] == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert "Solution 3:\n" + right in engine.prompts[0] and "Solution 4" not in engine.prompts[0]
    assert results[0].info == {
        "cat_label": right,
        "cat_tokens": len(right),
        "cat_agrees_with_majority": False,
        "cat_label_correct": True,
        "cat_majority_correct": False,
    }
    assert results[4].info["cat_label"] is None and results[4].info["cat_label_correct"] is False
    samples = [
        Sample(
            prompt=p,
            group_index=0,
            prompt_ids=[],
            response_ids=[1],
            behaviour_logprobs=[0.0],
            policy_version=[0],
            finish_reason="stop",
            response_text=t,
            reward=r.reward,
            reward_info=r.info,
        )
        for p, t, r in zip(prompts, responses, results, strict=True)
    ]
    metrics = rollout_metrics(samples, group_size=4)
    assert metrics["cat/label_accuracy"] == pytest.approx(4 / 7)
    assert metrics["cat/ttrl_label_accuracy"] == 0.0
    assert metrics["cat/labelled_share"] == pytest.approx(4 / 7)


def test_config_selects_cat_labels_and_refuses_them_async() -> None:
    config = load_config(None, ["algorithm.reward.labels=cat", "algorithm.reward.synthesis.candidates=4"])
    assert config.algorithm.reward.synthesis.candidates == 4
    with pytest.raises(ValueError, match="synthesis"):
        training_reward_pool(config.algorithm.reward)
    pool = training_reward_pool(config.algorithm.reward, synthesize=lambda prompts, groups: [])
    try:
        assert isinstance(pool, SynthesisLabelPool)
    finally:
        pool.close()
    with pytest.raises(ConfigError, match="pipeline: sync with labels: cat"):
        load_config(None, ["algorithm.reward.labels=cat", "pipeline=async"])
    with pytest.raises(ConfigError, match="candidates"):
        load_config(None, ["algorithm.reward.synthesis.candidates=0"])


@pytest.mark.slow
def test_reasonrl_eval_synthesize_on_the_tiny_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        app,
        [
            "eval", "builtin:tiny", "--data", "sum?size=6", "--n", "4", "--max-new-tokens", "4",
            "--template", "plain", "--out", str(out), "--strategy", "synthesize?m=2",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    curve = next(c for c in report["curves"] if c["label"] == "synthesize(m=2)")
    assert [p["n"] for p in curve["points"]] == [1, 2, 4]
    rows = [json.loads(line) for line in (out / "syntheses.jsonl").read_text().splitlines()]
    assert len(rows) == 6 * 3 and all(0 < row["tokens"] <= 4 for row in rows)
    assert max(len(row["candidates"]) for row in rows) == 2
    assert 0 < curve["extra_tokens_per_problem"] <= 4  # the synthesis's own tokens per problem, at N = 4
    assert "synthesize(m=2)" in (out / "report.md").read_text()


@pytest.mark.slow
def test_reasonrl_train_runs_on_cat_labels(tmp_path: Path) -> None:
    from tests.pipelines.conftest import QUICK

    run_dir = tmp_path / "run"
    overrides = [
        *QUICK,
        "algorithm.reward.labels=cat",
        "algorithm.reward.synthesis.candidates=2",
        "algorithm.reward.synthesis.temperature=1.0",  # sampled: its RNG must come back on resume
        "train.steps=4",
        "checkpoint.every_steps=2",
        "logging.plots=false",
        "logging.tensorboard=false",
        f"logging.run_dir={run_dir}",
    ]
    config = load_config(None, overrides)
    summary = train(config)
    assert summary["steps"] == 4
    steps = [row for row in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in row]
    assert len(steps) == 4
    for row in steps:
        assert 0 <= row["cat/label_accuracy"] <= 1 and 0 <= row["cat/ttrl_label_accuracy"] <= 1
        assert row["cat/synthesis_tokens"] > 0

    # Resumed from step 2, steps 3 and 4 (anchor sampling included) repeat exactly.
    resumed = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step_000004")
    (resumed / "summary.json").unlink()
    train(
        config.model_copy(update={"logging": config.logging.model_copy(update={"run_dir": str(resumed)})}), resume=True
    )

    def comparable(folder: Path) -> dict[int, dict]:
        rows = [r for r in read_metrics(folder / "metrics.jsonl") if "reward/mean" in r]
        return {r["step"]: {k: v for k, v in r.items() if not k.startswith(("time/", "perf/"))} for r in rows}

    before, again = comparable(run_dir), comparable(resumed)
    for step in (3, 4):
        assert again[step] == before[step], f"step {step} differs after resume"
