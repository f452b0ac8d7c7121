"""Held-out accuracy during training: the current policy answers each held-out prompt, its verifier judges."""

from __future__ import annotations

from collections.abc import Sequence

from reasonrl.data import Prompt
from reasonrl.engines.base import Engine, SamplingSettings
from reasonrl.evaluation.metrics import pass_at_k
from reasonrl.rewards import RewardPool
from reasonrl.rollout.collect import PromptEncoder, generate_episodes, generate_samples, score_samples
from reasonrl.rollout.episodes import EpisodeDriver
from reasonrl.rollout.samples import Sample


def evaluate(
    prompts: Sequence[Prompt],
    engine: Engine,
    encode: PromptEncoder,
    pool: RewardPool,
    sampling: SamplingSettings,
    samples_per_prompt: int = 1,
    episodes: EpisodeDriver | None = None,
) -> tuple[dict[str, float], list[Sample]]:
    """Metrics (`accuracy/eval` = share of responses the task's verifier accepts; with several samples per
    prompt also `eval/pass@n`; `eval/excluded_samples`: responses it could not judge, twice) and the scored
    samples. With `episodes` each response is a multi-turn episode (`rollout.environment`). `reasonrl eval`
    computes the full set from stored samples (`pipelines/evaluation.py`)."""
    samples = (
        generate_samples(prompts, samples_per_prompt, engine, encode, sampling)
        if episodes is None
        else generate_episodes(prompts, samples_per_prompt, engine, episodes, sampling)
    )
    score_samples(samples, pool)  # a response the verifier could not judge, twice, counts as not correct
    count = max(1, len(samples))
    metrics = {
        "accuracy/eval": sum(s.correct for s in samples) / count,
        "eval/excluded_samples": float(sum(s.excluded for s in samples)),
        "eval/reward": sum(s.reward for s in samples) / count,
        "eval/response_length_mean": sum(s.sampled_tokens for s in samples) / count,
        "eval/truncated_share": sum(s.finish_reason == "length" for s in samples) / count,
    }
    if samples_per_prompt > 1:
        groups = [samples[i : i + samples_per_prompt] for i in range(0, len(samples), samples_per_prompt)]
        passed = [pass_at_k(len(g), sum(s.correct for s in g), len(g)) for g in groups]
        metrics[f"eval/pass@{samples_per_prompt}"] = sum(passed) / max(1, len(passed))
    return metrics, samples
