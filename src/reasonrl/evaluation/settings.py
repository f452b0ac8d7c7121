"""Settings of one `reasonrl eval` run, validated before anything is loaded or generated."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from reasonrl.config.base import Section
from reasonrl.config.schema import PromptFormat
from reasonrl.evaluation.strategies import DEFAULT_STRATEGIES, generates_responses, parse_strategy


class EvalSettings(Section):
    """What to evaluate, how to sample, which strategies to compare and how to estimate their intervals."""

    model: str | None = Field(
        None,
        description="Hugging Face model folder, a run's checkpoint model folder, a .gguf file or builtin:NAME; "
        "needed to generate (not to re-score stored samples, except for particle filtering).",
    )
    data: str | None = Field(None, description="Data spec of the problems, e.g. sum?size=200 or gsm8k:test.jsonl.")
    samples: str | None = Field(None, description="Stored samples.jsonl to re-score instead of generating.")
    out: str | None = Field(None, description="Output directory (default evals/<date>-<time>).")
    n: int = Field(8, ge=1, description="Samples per problem (N_max of the curves; particles of particle_filter).")
    strategies: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STRATEGIES),
        description="Strategies as NAME[?key=value&...]: majority, best_of_n, weighted_majority, "
        "best_of_majority, particle_filter (see docs/evaluation.md).",
    )
    temperature: float = Field(0.8, ge=0, description="Sampling temperature (0 = greedy; then use n = 1).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(512, ge=1, description="Longest response in tokens.")
    engine: Literal["auto", "hf", "vllm"] = Field("auto", description="Rollout engine (auto: vLLM on a GPU).")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field("float32", description="Model dtype.")
    seed: int = Field(0, description="Seed of sampling, subsets, bootstrap and particle resampling.")
    format: PromptFormat = Field(default_factory=PromptFormat, description="Prompt rendering.")
    reward_workers: int = Field(0, ge=0, description="Reward worker processes for verifiers and reward scorers.")
    reward_timeout: float = Field(10.0, gt=0, description="Wall-clock limit per scored response, in seconds.")
    subsets: int = Field(
        16, ge=1, description="Size-N subsets per problem for each point below N_max (all when fewer exist)."
    )
    bootstrap: int = Field(1000, ge=10, description="Bootstrap resamples of problems for the intervals.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the bootstrap intervals.")

    @field_validator("strategies")
    @classmethod
    def _valid_strategies(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError("give at least one strategy")
        for value in values:
            parse_strategy(value)
        return values

    @model_validator(mode="after")
    def _inputs(self) -> EvalSettings:
        if self.samples is None and (self.model is None or self.data is None):
            raise ValueError("give MODEL and --data SPEC to generate, or --samples FILE to re-score stored samples")
        if self.samples is not None and self.data is not None:
            raise ValueError("--samples re-scores stored samples, whose problems are in the file; drop --data")
        needs_model = any(generates_responses(s.partition("?")[0]) for s in self.strategies)
        if needs_model and self.model is None:
            raise ValueError("particle_filter generates its own responses; give MODEL as well")
        return self
