"""The rollout-engine protocol: token ids in, token ids and behaviour log-probs out.

Every engine reports, for each sampled token, its log-probability under softmax of the model's raw logits
(temperature 1, before top-k/top-p) — the same definition the learner uses — so importance ratios between
the behaviour policy and the learner are meaningful whatever the sampling temperature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample; `temperature == 0` means greedy. `stop_token_ids`: tokens that end a response besides the
    EOS, kept in it (a tool call ends on `</tool_call>`, a special token that stop strings, matched on text
    decoded without special tokens, cannot see)."""

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class GenerationRequest:
    """One response to generate. `response_prefix_ids` continues a partial response (partial rollouts, a
    speculative draft's kept prefix); `max_new_tokens` overrides the sampling budget for this request (what is
    left of it); `residual_of`: a probability vector [vocab] the first new token is drawn away from, i.e. from
    norm(max(0, p - residual_of)) (exact speculative rollouts resample a rejected draft token so). `seed`: the
    request's own sampling seed (`rollout.seed_per_request`): its tokens then depend on the seed and the weights
    only, not on the engine's generator, nor on which call, batch or replica serves it, so a response lost with
    a crashed engine is regenerated as it was; None draws from the engine's generator."""

    prompt_ids: list[int]
    response_prefix_ids: list[int] = field(default_factory=list)
    max_new_tokens: int | None = None
    residual_of: torch.Tensor | None = None
    seed: int | None = None

    def sampling_seed(self) -> int | None:
        """The seed of this call's draws: `seed` mixed with the prefix length, so continuing a response (partial
        rollouts, episodes) does not replay the draws that produced its prefix."""
        return None if self.seed is None else mix_seed(self.seed, len(self.response_prefix_ids))


def mix_seed(*parts: int) -> int:
    """One 63-bit seed from integers (a run seed, a draw order, a member index, ...): an odd-multiplier hash,
    stable across processes and Python versions (unlike `hash` of a tuple, which is salted for str)."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = ((value ^ (part & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 29
    return value & 0x7FFFFFFFFFFFFFFF


@dataclass
class TokenScores:
    """What `Engine.score` returns for one response: each token's log-prob (the engine's definition: temperature
    1, raw logits) and, when asked for, the whole next-token distribution at each position [tokens, vocab]."""

    logprobs: list[float]
    distributions: torch.Tensor | None = None


@dataclass
class Generation:
    """What an engine returns for one request: only the newly generated tokens and their log-probs."""

    response_ids: list[int]
    logprobs: list[float]
    finish_reason: FinishReason
    text: str = ""


class Engine(Protocol):
    """A rollout engine; `version` is the policy version whose weights it currently samples from."""

    version: int

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[Generation]:
        """Generate one response per request, in request order."""
        ...

    def score(self, requests: Sequence[GenerationRequest], distributions: bool = False) -> list[TokenScores]:
        """Teacher-force each request's `response_prefix_ids` after its prompt under the current weights: the
        log-prob of every token (one forward pass, no sampling) and, with `distributions`, every position's
        probabilities. Speculative rollouts verify cached drafts with it."""
        ...

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]], version: int) -> None:
        """Load new policy weights (Hugging Face parameter names) and tag later samples with `version`."""
        ...

    def rng_state(self) -> dict[str, object]:
        """Sampling RNG state, saved in checkpoints so a resumed run samples the same tokens."""
        ...

    def set_rng_state(self, state: dict[str, object]) -> None: ...

    def close(self) -> None: ...


class StreamingEngine(Engine, Protocol):
    """An engine the async scheduler can drive: it reports each response as it ends (`on_finish`; returning
    True aborts the rest), checks `should_abort()` after every decode step (an abort decided elsewhere,
    e.g. across a process pipe), and decodes response text the way its generations do."""

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingSettings,
        *,
        on_finish: Callable[[int, Generation], bool] | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> list[Generation]: ...

    def text(self, tokens: Sequence[int], sampling: SamplingSettings) -> str: ...
