"""Held-out accuracy during training: the current policy answers each held-out prompt, its verifier judges."""

from __future__ import annotations

from collections.abc import Sequence

from reasonrl.data import Prompt
from reasonrl.engines.base import Engine, SamplingSettings
from reasonrl.rewards import RewardPool
from reasonrl.rollout.collect import PromptEncoder, generate_samples, score_samples
from reasonrl.rollout.samples import Sample


def evaluate(
    prompts: Sequence[Prompt],
    engine: Engine,
    encode: PromptEncoder,
    pool: RewardPool,
    sampling: SamplingSettings,
    samples_per_prompt: int = 1,
) -> tuple[dict[str, float], list[Sample]]:
    """Metrics (`accuracy/eval` = share of responses the task's verifier accepts) and the scored samples."""
    samples = generate_samples(prompts, samples_per_prompt, engine, encode, sampling)
    score_samples(samples, pool)
    count = max(1, len(samples))
    metrics = {
        "accuracy/eval": sum(s.correct for s in samples) / count,
        "eval/reward": sum(s.reward for s in samples) / count,
        "eval/response_length_mean": sum(len(s.response_ids) for s in samples) / count,
        "eval/truncated_share": sum(s.finish_reason == "length" for s in samples) / count,
    }
    return metrics, samples
