"""The `Sample` record: one scored response, everything the learner and the reports need to know about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonrl.data import Prompt
from reasonrl.engines.base import FinishReason


@dataclass
class Sample:
    """One response to one prompt.

    `behaviour_logprobs` are the engine's per-token log-probs as sampled; `policy_version` is per token, since
    a partially generated response may be continued under newer weights; `start_version` is the version that
    began the response, which the async pipeline's staleness bound counts from.
    """

    prompt: Prompt
    group_index: int
    prompt_ids: list[int]
    response_ids: list[int]
    behaviour_logprobs: list[float]
    policy_version: list[int]
    finish_reason: FinishReason
    response_text: str
    reward: float = 0.0
    reward_info: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    start_version: int = 0
    tree_path: str = ""  # its path in its group's tree ("0/1/0"), with tree rollouts
    # Multi-turn episodes (rollout.environment): 1 per sampled token, 0 per environment token (None: all
    # sampled); the text the verifier judges (None: response_text); the episode's counters and turns.
    response_mask: list[int] | None = None
    answer_text: str | None = None
    episode: dict[str, Any] | None = None

    @property
    def judged_text(self) -> str:
        """What the reward judges: an episode's answer, or the response."""
        return self.response_text if self.answer_text is None else self.answer_text

    @property
    def sampled_tokens(self) -> int:
        """Tokens the policy sampled (an episode's environment tokens are not)."""
        return len(self.response_ids) if self.response_mask is None else sum(self.response_mask)

    @property
    def excluded(self) -> bool:
        """Could no reward judge it (`RewardUnavailable`, e.g. the code sandbox failed)? Then it is never trained
        on: its reward of 0 is no verdict."""
        return bool(self.reward_info.get("excluded", False))

    @property
    def correct(self) -> bool:
        """Did the task's verifier accept the answer (as opposed to the shaped training reward)?"""
        return bool(self.reward_info.get("correct", self.reward >= 1.0))

    def to_record(self) -> dict[str, Any]:
        """A JSON-able view for rollout dumps and replay."""
        return {
            "prompt_id": self.prompt.id,
            "question": self.prompt.question,
            "answer": self.prompt.answer,
            "group_index": self.group_index,
            "response": self.response_text,
            "reward": self.reward,
            "reward_info": self.reward_info,
            "finish_reason": self.finish_reason,
            "prompt_ids": self.prompt_ids,
            "response_ids": self.response_ids,
            "behaviour_logprobs": self.behaviour_logprobs,
            "policy_version": self.policy_version,
            "start_version": self.start_version,
            "tree_path": self.tree_path,
            **(
                {"response_mask": self.response_mask, "judged_answer": self.answer_text, "episode": self.episode}
                if self.episode is not None
                else {}
            ),
        }
