"""Turn prompts into scored samples: render, tokenize, generate groups of n, score, wrap as `Sample`s."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from reasonrl.config.schema import PromptFormat
from reasonrl.data import Prompt, render_prompt
from reasonrl.engines.base import Engine, GenerationRequest, SamplingSettings
from reasonrl.rewards import RewardResult
from reasonrl.rewards.majority_labels import has_reference
from reasonrl.rollout.episodes import EpisodeDriver
from reasonrl.rollout.responses import Rollout
from reasonrl.rollout.samples import Sample


class PromptEncoder:
    """Rendered, tokenized prompts, cached by prompt id: a training run sees each prompt many times."""

    def __init__(self, tokenizer: Any, fmt: PromptFormat) -> None:
        self.tokenizer = tokenizer
        self.fmt = fmt
        self._cache: dict[str, list[int]] = {}

    def __call__(self, prompt: Prompt) -> list[int]:
        ids = self._cache.get(prompt.id)
        if ids is None:
            # The rendered string already holds every special token the template wants.
            text = render_prompt(prompt, self.tokenizer, self.fmt)
            ids = self._cache[prompt.id] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids


def generate_samples(
    prompts: Sequence[Prompt],
    group_size: int,
    engine: Engine,
    encode: PromptEncoder,
    sampling: SamplingSettings,
) -> list[Sample]:
    """`group_size` responses per prompt, adjacent in the result (group i = rows i*n .. i*n+n-1)."""
    requests, owners = [], []
    for group_index, prompt in enumerate(prompts):
        ids = encode(prompt)
        for _ in range(group_size):
            requests.append(GenerationRequest(prompt_ids=ids))
            owners.append((group_index, prompt))
    generations = engine.generate(requests, sampling)
    return [
        Sample(
            prompt=prompt,
            group_index=group_index,
            prompt_ids=request.prompt_ids,
            response_ids=generation.response_ids,
            behaviour_logprobs=generation.logprobs,
            policy_version=[engine.version] * len(generation.response_ids),
            finish_reason=generation.finish_reason,
            response_text=generation.text,
            start_version=engine.version,
        )
        for (group_index, prompt), request, generation in zip(owners, requests, generations, strict=True)
    ]


class ScoringPool(Protocol):
    """What scores responses: a `RewardPool`, or a label pool wrapping one (majority, CaT)."""

    def submit(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> Future[list[RewardResult]]: ...


class PendingScores:
    """The rewards of some samples, on their way: `done()` says whether they are in, and `result()` waits for
    them and fills each sample's reward and reward_info (once; a reward that raised re-raises here)."""

    def __init__(
        self,
        samples: list[Sample],
        rewards: Future[list[RewardResult]],
        checked: list[Sample],
        verdicts: Future[list[RewardResult]] | None,
    ) -> None:
        self.samples = samples
        self._rewards = rewards
        self._checked = checked
        self._verdicts = verdicts
        self._filled = False

    def done(self) -> bool:
        return self._rewards.done() and (self._verdicts is None or self._verdicts.done())

    def result(self) -> None:
        if self._filled:
            return
        for sample, result in zip(self.samples, self._rewards.result(), strict=True):
            components = result.components
            environment = sample.episode["reward"] if sample.episode is not None else 0.0
            if sample.episode is not None:  # an episode's environment reward adds to the verifier's
                components = {**components, "environment": environment}
            sample.reward = result.reward + environment
            sample.reward_info = {
                "components": components,
                "error": result.error,
                "seconds": result.seconds,
                **result.info,
            }
        if self._verdicts is not None:
            for sample, verdict in zip(self._checked, self._verdicts.result(), strict=True):
                if sample.excluded:
                    continue
                if verdict.excluded:  # its correctness is unknown: no accuracy or GRESO history may count it
                    sample.reward_info |= {"excluded": True, "error": verdict.error}
                else:
                    sample.reward_info["correct"] = verdict.reward >= 1.0
        self._filled = True


def submit_scores(pool: ScoringPool, verify: ScoringPool | None = None) -> Callable[[list[Sample]], PendingScores]:
    """`submit(samples)`: start scoring the samples and return at once (the rollout scheduler decodes on while a
    `RewardPool`'s workers score); the rewards land in the samples when `result()` is called.

    `verify`: the task's own verifier, when the training reward is shaped (weighted terms, majority labels):
    it decides `reward_info["correct"]` here, where the reward is scored, so that whatever reads
    correctness next (accuracy metrics, GRESO's easy/hard history on the producer thread) sees the
    verifier's verdict and never the shaped reward's fallback (`reward >= 1`). Only prompts with a reference
    answer can be verified; without one (TTRL on unlabelled data) the majority-label reward is the only judge
    there is, and `Sample.correct` falls back to it."""

    def submit(samples: list[Sample]) -> PendingScores:
        rewards = pool.submit([s.prompt for s in samples], [s.judged_text for s in samples])
        checked = [s for s in samples if has_reference(s.prompt)] if verify is not None else []
        verdicts = None
        if verify is not None and checked:
            verdicts = verify.submit([s.prompt for s in checked], [s.judged_text for s in checked])
        return PendingScores(samples, rewards, checked, verdicts)

    return submit


def score_samples(samples: Sequence[Sample], pool: ScoringPool, verify: ScoringPool | None = None) -> float:
    """Fill each sample's reward and reward_info now (see `submit_scores`); returns the seconds it took."""
    start = time.perf_counter()
    submit_scores(pool, verify)(list(samples)).result()
    return time.perf_counter() - start


def generate_episodes(
    prompts: Sequence[Prompt], group_size: int, engine: Engine, driver: EpisodeDriver, sampling: SamplingSettings
) -> list[Sample]:
    """`generate_samples` for multi-turn episodes: one generate call per turn over every episode still running,
    the environment answering between calls, until all have ended (held-out evaluation; training episodes go
    through the rollout scheduler, which interleaves them with scoring and partial rollouts)."""
    owners: list[tuple[int, Prompt, Rollout]] = []
    for group_index, prompt in enumerate(prompts):
        for member in range(group_size):
            ids, episode = driver.start(prompt, seed=group_index * group_size + member)
            owners.append((group_index, prompt, Rollout(prompt_ids=ids, episode=episode, start_version=engine.version)))
    while running := [rollout for _, _, rollout in owners if rollout.finish_reason is None]:
        requests = [
            GenerationRequest(
                r.prompt_ids,
                list(r.response_ids),
                max_new_tokens=driver.budget(r.episode, len(r.response_ids)) if r.episode is not None else None,
            )
            for r in running
        ]
        version = engine.version
        for rollout, generation in zip(running, engine.generate(requests, sampling), strict=True):
            rollout.extend(generation, version)
            if rollout.finish_reason is not None:
                driver.end_turn(rollout, version)
    samples = []
    for group_index, prompt, rollout in owners:
        sample = rollout.to_sample(prompt, driver.deltas.display_text(rollout.response_ids))
        sample.group_index = group_index
        samples.append(sample)
    return samples
