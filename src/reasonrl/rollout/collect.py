"""Turn prompts into scored samples: render, tokenize, generate groups of n, score, wrap as `Sample`s."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from reasonrl.config.schema import PromptFormat
from reasonrl.data import Prompt, render_prompt
from reasonrl.engines.base import Engine, GenerationRequest, SamplingSettings
from reasonrl.rewards import RewardPool
from reasonrl.rewards.majority_labels import has_reference
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


def score_samples(samples: Sequence[Sample], pool: RewardPool, verify: RewardPool | None = None) -> float:
    """Fill each sample's reward and reward_info from the pool; returns the seconds it took.

    `verify`: the task's own verifier, when the training reward is shaped (weighted terms, majority labels):
    it decides `reward_info["correct"]` here, where the reward is scored, so that whatever reads
    correctness next (accuracy metrics, GRESO's easy/hard history on the producer thread) sees the
    verifier's verdict and never the shaped reward's fallback (`reward >= 1`)."""
    start = time.perf_counter()
    results = pool.score([s.prompt for s in samples], [s.response_text for s in samples])
    for sample, result in zip(samples, results, strict=True):
        sample.reward = result.reward
        sample.reward_info = {
            "components": result.components,
            "error": result.error,
            "seconds": result.seconds,
            **result.info,
        }
    # Only prompts with a reference answer can be verified; without one (TTRL on unlabelled data) the
    # majority-label reward is the only judge there is, and `Sample.correct` falls back to it.
    checked = [s for s in samples if has_reference(s.prompt)]
    if verify is not None and checked:
        verdicts = verify.score([s.prompt for s in checked], [s.response_text for s in checked])
        for sample, verdict in zip(checked, verdicts, strict=True):
            sample.reward_info["correct"] = verdict.reward >= 1.0
    return time.perf_counter() - start
