"""Scorers: one number per (prompt, response) that best-of-N, weighted majority, Best-of-Majority and
particle filtering rank or weight by.

- `logprob`: exp of the response's mean token log-prob (the geometric-mean token probability, in (0, 1]).
  The exponential keeps the ranking of the mean log-prob and gives weighted majority and particle filtering
  the non-negative weight and the (0, 1) "probability" they need.
- `reward:NAME`: a reward function, a built-in verifier name or your `module:function`, scored through a
  `RewardPool` (so it can neither hang nor crash the evaluation). It sees the reference answer like any
  reward: a ground-truth verifier as scorer turns best-of-N into the oracle, so use answer-free ones here.
- `rm:PATH`: a Hugging Face sequence-classification reward model folder. The question and the response are
  rendered as a user/assistant chat (its tokenizer's template; without one, question, blank line,
  response); the score is sigmoid(logit) for a one-label head, else the probability of the last label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from reasonrl.config.data_source import known_verifier
from reasonrl.data import Prompt
from reasonrl.evaluation.strategies import SCORER_HELP


class Scorer(Protocol):
    def __call__(
        self, prompts: Sequence[Prompt], responses: Sequence[str], logprobs: Sequence[Sequence[float]]
    ) -> list[float]: ...

    def close(self) -> None: ...


def check_scorer(spec: str) -> str:
    """`spec` if it names a scorer that can be built (checked before any generation), else a ValueError."""
    kind, _, argument = spec.partition(":")
    if spec == "logprob":
        return spec
    if kind == "reward" and argument:
        known_verifier(argument)
        return spec
    if kind == "rm" and argument:
        if not (Path(argument).expanduser() / "config.json").is_file():
            raise FileNotFoundError(
                f"scorer {spec!r}: {argument!r} is not a Hugging Face model folder (no config.json there)"
            )
        return spec
    raise ValueError(f"unknown scorer {spec!r}; use {SCORER_HELP}")


def build_scorer(spec: str, *, device: str = "cpu", reward_workers: int = 0, reward_timeout: float = 10.0) -> Scorer:
    kind, _, argument = check_scorer(spec).partition(":")
    if kind == "logprob":
        return LogprobScorer()
    if kind == "reward":
        return RewardFunctionScorer(argument, workers=reward_workers, timeout_seconds=reward_timeout)
    return RewardModelScorer(Path(argument).expanduser(), device=device)


def mean_token_probability(logprobs: Sequence[float]) -> float:
    """exp(mean log-prob) of a response; 0 for an empty one (no evidence is not certainty)."""
    return math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0


class LogprobScorer:
    """The policy's own confidence: exp of the mean token log-prob the engine reported while sampling."""

    def __call__(
        self, prompts: Sequence[Prompt], responses: Sequence[str], logprobs: Sequence[Sequence[float]]
    ) -> list[float]:
        return [mean_token_probability(values) for values in logprobs]

    def close(self) -> None:
        """Nothing to release."""


class RewardFunctionScorer:
    """A reward function by name, in a `RewardPool` with its timeout and crash isolation."""

    def __init__(self, name: str, *, workers: int, timeout_seconds: float) -> None:
        from reasonrl.config.schema import RewardTerm
        from reasonrl.rewards import RewardPool

        self.pool = RewardPool([RewardTerm(name=name)], workers=workers, timeout_seconds=timeout_seconds)

    def __call__(
        self, prompts: Sequence[Prompt], responses: Sequence[str], logprobs: Sequence[Sequence[float]]
    ) -> list[float]:
        # A response the reward could not judge, twice (`RewardUnavailable`), ranks last: 0, like a wrong one.
        return [result.reward for result in self.pool.score(prompts, responses)]

    def close(self) -> None:
        self.pool.close()


class RewardModelScorer:
    """An outcome reward model (sequence classification head), scored in batches without gradients."""

    def __init__(self, folder: Path, *, device: str, batch_size: int = 16, max_length: int = 2048) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).to(device).eval()
        if self.model.config.pad_token_id is None:
            # The head reads the last non-padding token; it needs to know which id pads.
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length

    def _text(self, prompt: Prompt, response: str) -> str:
        if self.tokenizer.chat_template:
            chat = [{"role": "user", "content": prompt.question}, {"role": "assistant", "content": response}]
            return self.tokenizer.apply_chat_template(chat, tokenize=False)
        return f"{prompt.question}\n\n{response}"

    def __call__(
        self, prompts: Sequence[Prompt], responses: Sequence[str], logprobs: Sequence[Sequence[float]]
    ) -> list[float]:
        torch = self.torch
        texts = [self._text(p, r) for p, r in zip(prompts, responses, strict=True)]
        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[start : start + self.batch_size],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    add_special_tokens=False,
                ).to(self.device)
                logits = self.model(**batch).logits.float()
                values = torch.sigmoid(logits[:, 0]) if logits.shape[-1] == 1 else logits.softmax(-1)[:, -1]
                scores.extend(values.tolist())
        return scores

    def close(self) -> None:
        """The model is garbage-collected with the scorer."""
