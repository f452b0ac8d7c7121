"""Particle filtering: the weight formula, resampling towards high scores, and a run on the tiny model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoModelForCausalLM

from reasonrl.config.schema import PromptFormat
from reasonrl.data import Prompt, load_prompts
from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings
from reasonrl.engines.hf import HFEngine
from reasonrl.evaluation import parse_strategy
from reasonrl.evaluation.particles import ParticleFilter, particle_weights
from reasonrl.evaluation.scorers import LogprobScorer
from reasonrl.rollout.collect import PromptEncoder
from reasonrl.training.models import load_tokenizer


def test_weights_are_proportional_to_the_odds_to_the_power_one_over_tau() -> None:
    assert particle_weights([0.9, 0.1], tau=1.0) == pytest.approx([81 / 82, 1 / 82])
    assert particle_weights([0.9, 0.1], tau=2.0) == pytest.approx([0.9, 0.1])
    assert particle_weights([0.0, 1.0], tau=1.0).sum() == pytest.approx(1.0)  # clipped, not infinite


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    tokenizer = load_tokenizer(tiny_model_dir)
    engine = HFEngine(AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), tokenizer, seed=0)
    prompts = load_prompts("sum?size=4")
    encode = PromptEncoder(tokenizer, PromptFormat(template="plain"))
    return engine, tokenizer, prompts, [encode(p) for p in prompts]


def test_particle_filter_runs_step_by_step_on_the_tiny_model(tiny) -> None:  # type: ignore[no-untyped-def]
    engine, tokenizer, prompts, ids = tiny
    options = parse_strategy("particle_filter?step_tokens=3&max_steps=4").particle_options()
    pf = ParticleFilter(engine, tokenizer, LogprobScorer(), options, max_new_tokens=12, seed=0)
    outcomes = pf.run(prompts, ids, particles=4)
    assert [o.prompt.id for o in outcomes] == [p.id for p in prompts]
    for outcome in outcomes:
        assert len(outcome.particles) == 4 and 1 < outcome.steps <= 4
        assert all(p.finished and 0 < len(p.response_ids) <= 12 for p in outcome.particles)
        assert all(len(p.logprobs) == len(p.response_ids) for p in outcome.particles)
        assert sum(outcome.weights) == pytest.approx(1.0)
        scores = [p.score for p in outcome.particles]
        assert outcome.chosen == int(np.argmax(scores))
        assert outcome.response == tokenizer.decode(
            outcome.particles[outcome.chosen].response_ids, skip_special_tokens=True
        )
    voted = ParticleFilter(
        engine, tokenizer, LogprobScorer(), options.model_copy(update={"answer": "vote"}), max_new_tokens=12
    ).run(prompts, ids, particles=4)
    assert all(0 <= o.chosen < 4 for o in voted)


class FirstTokenScorer:
    """Scores 0.99 a partial response whose first token id is even, 0.01 otherwise."""

    def __init__(self) -> None:
        self.ids: dict[str, list[int]] = {}

    def __call__(
        self, prompts: Sequence[Prompt], responses: Sequence[str], logprobs: Sequence[Sequence[float]]
    ) -> list[float]:
        return [0.99 if r and ord(r[0]) % 2 == 0 else 0.01 for r in responses]

    def close(self) -> None:
        """Nothing to release."""


def test_resampling_concentrates_on_what_the_step_scorer_likes(tiny) -> None:  # type: ignore[no-untyped-def]
    engine, tokenizer, prompts, ids = tiny
    options = parse_strategy("particle_filter?step_tokens=1&max_steps=3").particle_options()
    pf = ParticleFilter(engine, tokenizer, FirstTokenScorer(), options, max_new_tokens=3, temperature=1.0, seed=1)
    outcomes = pf.run(prompts, ids, particles=8)
    for outcome in outcomes:
        firsts = [p.text[:1] for p in outcome.particles]
        if any(f and ord(f) % 2 == 0 for f in firsts):  # some particle was liked: all descend from such
            assert all(f and ord(f) % 2 == 0 for f in firsts), firsts


class ScriptedEngine:
    """Problem A (prompt [1]) finishes at its first step, particle k writing token 10 + k; problem B
    (prompt [2]) writes token 20 each step and never finishes on its own."""

    version = 0

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[Generation]:
        out, a_seen = [], 0
        for request in requests:
            if request.prompt_ids == [1]:
                out.append(Generation([10 + a_seen], [-0.1], "stop"))
                a_seen += 1
            else:
                out.append(Generation([20], [-0.1], "length"))
        return out


class LetterTokenizer:
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return "".join({10: "a0", 11: "a1", 12: "a2", 20: "b"}[i] for i in ids)


class FavoursA0:
    def __call__(self, prompts, responses, logprobs):  # type: ignore[no-untyped-def]
        return [0.99 if r == "a0" else 0.01 for r in responses]

    def close(self) -> None:
        """Nothing to release."""


def test_a_finished_problem_is_not_resampled_while_another_runs() -> None:
    options = parse_strategy("particle_filter?max_steps=3").particle_options()
    pf = ParticleFilter(ScriptedEngine(), LetterTokenizer(), FavoursA0(), options, max_new_tokens=10, seed=0)  # type: ignore[arg-type]
    a, b = pf.run(
        [Prompt(id="a", answer="1", task="exact", text="A"), Prompt(id="b", answer="2", task="exact", text="B")],
        [[1], [2]],
        3,
    )
    assert [p.text for p in a.particles] == ["a0", "a1", "a2"]  # resampling would have made them all a0
    assert [p.text for p in b.particles] == ["bbb"] * 3 and b.steps == 3
