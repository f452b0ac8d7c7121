"""`Rollout`: one response in progress, the unit the rollout scheduler generates, continues and saves.

With an environment (`rollout.environment`) a response is a whole episode: sampled turns and the
environment's template deltas, told apart by `mask` (1 = sampled, 0 = environment), with the episode's
state in `episode`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from reasonrl.data import Prompt
from reasonrl.engines.base import FinishReason, Generation
from reasonrl.rollout.episodes import Episode
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.speculative import decode_tensor, encode_tensor


@dataclass
class Rollout:
    """One response in progress: its tokens so far, their behaviour log-probs and the version of each.
    `start_version` is -1 until its first token is generated; `finish_reason` is None while unfinished.
    `text`: the engine's own text of a response one call generated whole without streaming (vLLM's
    detokenizer drops an incomplete trailing UTF-8 byte that a full decode shows as U+FFFD); None: the text
    is decoded from the tokens (streamed, continued and restored responses). `residual`: the distribution the
    next token is drawn away from (an exact speculative draft rejected there), until a token is generated.
    `mask`: 1 per sampled token, 0 per environment token (template deltas); `episode`: the environment and
    counters of a multi-turn episode, None for single-turn responses."""

    prompt_ids: list[int]
    response_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    start_version: int = -1
    finish_reason: FinishReason | None = None
    text: str | None = None
    residual: torch.Tensor | None = None
    path: str = ""
    mask: list[int] = field(default_factory=list)
    episode: Episode | None = None

    def extend(self, generation: Generation, version: int) -> None:
        """Append what one generate call sampled; an aborted response stays unfinished."""
        if generation.response_ids:
            self.residual = None
        self.response_ids += generation.response_ids
        self.logprobs += generation.logprobs
        self.versions += [version] * len(generation.response_ids)
        self.mask += [1] * len(generation.response_ids)
        self.finish_reason = None if generation.finish_reason == "abort" else generation.finish_reason
        if not self.response_ids:
            self.start_version = -1

    def append_environment(self, delta: list[int], version: int) -> None:
        """Append an environment's template delta (mask 0, log-prob 0.0: never trained on) and reopen the
        response for the next turn."""
        self.response_ids += delta
        self.logprobs += [0.0] * len(delta)
        self.versions += [version] * len(delta)
        self.mask += [0] * len(delta)
        self.finish_reason, self.text = None, None

    def restart(self) -> int:
        """Drop everything generated (too old to keep); returns how many tokens were dropped."""
        dropped = len(self.response_ids)
        self.response_ids, self.logprobs, self.versions, self.mask = [], [], [], []
        self.start_version, self.finish_reason, self.text, self.residual = -1, None, None, None
        return dropped

    def to_json(self) -> dict[str, Any]:
        """Copies, taken under the producer's lock: the checkpoint is written after the lock is released."""
        return {
            "response_ids": list(self.response_ids),
            "logprobs": list(self.logprobs),
            "versions": list(self.versions),
            "start_version": self.start_version,
            "finish_reason": self.finish_reason,
            "residual": None if self.residual is None else encode_tensor(self.residual),
            "path": self.path,
            "mask": list(self.mask),
            "episode": None if self.episode is None else self.episode.to_json(),
        }

    def to_sample(self, prompt: Prompt, text: str) -> Sample:
        """The finished response as an unscored sample (`text`: its response text)."""
        episode = self.episode
        return Sample(
            prompt=prompt,
            group_index=0,
            prompt_ids=self.prompt_ids,
            response_ids=self.response_ids,
            behaviour_logprobs=self.logprobs,
            policy_version=self.versions,
            finish_reason=self.finish_reason or "length",
            response_text=text,
            start_version=self.start_version,
            tree_path=self.path,
            response_mask=None if episode is None else list(self.mask),
            answer_text=None if episode is None else episode.answer,
            episode=None if episode is None else episode.record(),
        )

    @classmethod
    def from_json(cls, prompt_ids: list[int], saved: dict[str, Any], episode: Episode | None = None) -> Rollout:
        """`episode`: the saved episode's state with its environment rebuilt (`EpisodeDriver.restore`)."""
        if saved.get("episode") is not None and episode is None:
            raise ValueError(
                "the checkpoint holds multi-turn episodes but rollout.environment is not set; resume with the "
                "run's own config"
            )
        residual = saved.get("residual")
        fields = {k: v for k, v in saved.items() if k not in ("residual", "episode")}
        fields.setdefault("mask", [1] * len(saved["response_ids"]))
        return cls(
            prompt_ids=prompt_ids,
            **fields,
            residual=None if residual is None else decode_tensor(residual),
            episode=episode,
        )
