"""Particle filtering for test-time scaling ("Rollout Roulette", Puri et al. 2025, arXiv 2502.01618).

Generation is a state-space model: the policy proposes the next reasoning step, a step scorer says how
promising the partial response is. N particles advance one step at a time (a step ends at the delimiter,
by default a blank line, or after `step_tokens`); after every step each problem's particles are resampled
multinomially, with replacement, by weights softmax(logit(score) / tau), i.e. in proportion to the odds
(score / (1 - score))^(1/tau). Finished particles stay in the pool and are copied as they are
(the paper's `resample_inactive`); a particle finishes at end of sequence, at the token budget, or at the
step limit. The answer is the best-scored final particle, or the answer with the most total weight.

It works with any engine that continues from a prefix (`GenerationRequest.response_prefix_ids`): the hf
engine re-encodes prompt + prefix, vLLM takes them as token ids and reuses its prefix cache. All particles
of all problems advance in one `generate` call per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from reasonrl.data import Prompt
from reasonrl.engines.base import Engine, GenerationRequest, SamplingSettings
from reasonrl.evaluation.scorers import Scorer
from reasonrl.evaluation.strategies import ParticleFilterOptions
from reasonrl.rewards.equivalence import NO_ANSWER, answer_key, group_answers

# Scores are clipped away from 0 and 1 before the logit, which is infinite there.
_SCORE_EPSILON = 1e-6


@dataclass
class Particle:
    """One partial response: its tokens and behaviour log-probs so far, and its latest step score."""

    response_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""
    score: float = 0.5
    finished: bool = False


@dataclass
class ParticleOutcome:
    """The final particles of one problem, their weights, the chosen response and how many steps it took."""

    prompt: Prompt
    particles: list[Particle]
    weights: list[float]
    chosen: int
    steps: int
    generated_tokens: int = 0  # every token generated for this problem, by all particles over all steps

    @property
    def response(self) -> str:
        return self.particles[self.chosen].text


def particle_weights(scores: Sequence[float], tau: float) -> np.ndarray:
    """softmax(logit(score) / tau) over one problem's particles."""
    clipped = np.clip(np.asarray(scores, dtype=np.float64), _SCORE_EPSILON, 1 - _SCORE_EPSILON)
    logits = (np.log(clipped) - np.log1p(-clipped)) / tau
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def resample(particles: list[Particle], weights: np.ndarray, rng: np.random.Generator) -> list[Particle]:
    """N particles drawn with replacement in proportion to `weights`; each draw is an independent copy."""
    picks = rng.choice(len(particles), size=len(particles), replace=True, p=weights)
    return [
        replace(particles[i], response_ids=list(particles[i].response_ids), logprobs=list(particles[i].logprobs))
        for i in picks
    ]


@dataclass
class ParticleFilter:
    """Runs the filter for a batch of problems with `engine`, scoring partial responses with `scorer`."""

    engine: Engine
    tokenizer: Any
    scorer: Scorer
    options: ParticleFilterOptions
    max_new_tokens: int
    temperature: float = 0.8
    top_p: float = 1.0
    seed: int = 0

    def run(self, prompts: Sequence[Prompt], prompt_ids: Sequence[list[int]], particles: int) -> list[ParticleOutcome]:
        rng = np.random.default_rng(self.seed)
        pools = [[Particle() for _ in range(particles)] for _ in prompts]
        generated = [0] * len(prompts)
        steps = 0
        while steps < self.options.max_steps and any(not p.finished for pool in pools for p in pool):
            if steps > 0:
                # Only pools still running: a finished problem's particles are final, whatever shares its batch.
                pools = [
                    resample(pool, particle_weights([p.score for p in pool], self.options.tau), rng)
                    if any(not p.finished for p in pool)
                    else pool
                    for pool in pools
                ]
            self._advance(prompts, prompt_ids, pools, generated)
            steps += 1
        return [
            replace(self._outcome(prompt, pool, steps), generated_tokens=tokens)
            for prompt, pool, tokens in zip(prompts, pools, generated, strict=True)
        ]

    def _advance(
        self,
        prompts: Sequence[Prompt],
        prompt_ids: Sequence[list[int]],
        pools: list[list[Particle]],
        generated: list[int] | None = None,
    ) -> None:
        """Extend every unfinished particle by one step and rescore it (adding the new tokens of problem i to
        `generated[i]`)."""
        active = [(i, p) for i, pool in enumerate(pools) for p in pool if not p.finished]
        sampling = SamplingSettings(
            max_new_tokens=self.options.step_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=(self.options.delimiter,),
        )
        requests = [
            GenerationRequest(
                prompt_ids=prompt_ids[i],
                response_prefix_ids=p.response_ids,
                max_new_tokens=min(self.options.step_tokens, self.max_new_tokens - len(p.response_ids)),
            )
            for i, p in active
        ]
        for (i, particle), generation in zip(active, self.engine.generate(requests, sampling), strict=True):
            if generated is not None:
                generated[i] += len(generation.response_ids)
            step_text = self.tokenizer.decode(generation.response_ids, skip_special_tokens=True)
            particle.response_ids.extend(generation.response_ids)
            particle.logprobs.extend(generation.logprobs)
            particle.text = self.tokenizer.decode(particle.response_ids, skip_special_tokens=True)
            ended = generation.finish_reason == "stop" and self.options.delimiter not in step_text
            particle.finished = (
                ended or len(particle.response_ids) >= self.max_new_tokens or not generation.response_ids
            )
        scores = self.scorer(
            [prompts[i] for i, _ in active], [p.text for _, p in active], [p.logprobs for _, p in active]
        )
        for (_, particle), score in zip(active, scores, strict=True):
            particle.score = score

    def _outcome(self, prompt: Prompt, pool: list[Particle], steps: int) -> ParticleOutcome:
        for particle in pool:
            particle.finished = True  # the step limit ends whatever is still running
        weights = particle_weights([p.score for p in pool], self.options.tau)
        scores = [p.score for p in pool]
        chosen = max(range(len(pool)), key=scores.__getitem__)
        if self.options.answer == "vote":
            voted = weighted_vote(prompt, [p.text for p in pool], weights.tolist(), scores)
            chosen = chosen if voted is None else voted
        return ParticleOutcome(prompt, pool, weights.tolist(), chosen, steps)


def weighted_vote(
    prompt: Prompt, texts: Sequence[str], weights: Sequence[float], scores: Sequence[float]
) -> int | None:
    """The best-scored particle of the answer with the largest total weight; None if no particle has an answer."""
    key = answer_key(prompt.task, prompt.meta.get("verifier_options") or {})
    classes = group_answers([key.extract(text) for text in texts], key)
    totals: dict[int, float] = {}
    for label, weight in zip(classes, weights, strict=True):
        if label != NO_ANSWER:
            totals[label] = totals.get(label, 0.0) + weight
    if not totals:
        return None
    winner = max(totals, key=totals.__getitem__)
    return max((i for i, label in enumerate(classes) if label == winner), key=scores.__getitem__)
