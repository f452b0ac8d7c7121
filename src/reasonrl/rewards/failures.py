"""Stop a run whose reward fails on every sample, instead of letting it train on zeros and finish "normally".

A reward that raises scores 0 with its error kept (`RewardResult.error`, copied into `Sample.reward_info["error"]`
by `score_samples`), which is right for a reward that fails now and then. A reward that fails on every sample of
several steps in a row is broken (a bug, a missing import, a wrong return type), and the run is wasted: the
accuracy stays 0 and nothing says why. `RewardFailureWatch` counts such steps, the same way for the sync and the
async pipeline, and stops the run with the first error it recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reasonrl.config.schema import RewardConfig
    from reasonrl.rollout.samples import Sample

# Longest response quoted in the stop message: enough to reproduce the call, short enough for a log line.
_QUOTE_CHARS = 200


class RewardsFailing(RuntimeError):
    """Every reward of `algorithm.reward.max_failed_steps` training steps in a row failed; the run stopped."""


class RewardFailureWatch:
    """Counts consecutive training steps on which every sample's reward errored; `observe` raises at the limit.

    max_failed_steps: steps in a row that stop the run (0 = never stop). reward_names: what the message calls
    the reward (the config's `reward.functions`); empty = the task verifiers named by the samples' prompts.
    """

    def __init__(self, max_failed_steps: int = 3, reward_names: Sequence[str] = ()) -> None:
        if isinstance(max_failed_steps, bool) or not isinstance(max_failed_steps, int) or max_failed_steps < 0:
            raise ValueError(
                "RewardFailureWatch: max_failed_steps must be an integer >= 0 (0 = never stop), "
                f"got {max_failed_steps!r}"
            )
        self.max_failed_steps = max_failed_steps
        self.reward_names = tuple(reward_names)
        self.failed_in_a_row = 0
        self._first: Sample | None = None  # the first failed sample of the current run of failed steps

    @classmethod
    def from_config(cls, config: RewardConfig) -> RewardFailureWatch:
        """The watch the `algorithm.reward` config section asks for."""
        return cls(config.max_failed_steps, [term.name for term in config.functions])

    def observe(self, samples: Sequence[Sample]) -> None:
        """Count one training step's scored samples; raise `RewardsFailing` at `max_failed_steps` failed steps
        in a row. A step with any sample scored without error resets the count; an empty step changes nothing.
        Excluded samples (no verdict, `RewardUnavailable`) are neither: the scheduler watches those itself."""
        samples = [sample for sample in samples if not sample.excluded]
        if not samples:
            return
        if not all(sample.reward_info.get("error") for sample in samples):
            self.failed_in_a_row = 0
            self._first = None
            return
        self.failed_in_a_row += 1
        if self._first is None:
            self._first = samples[0]
        if self.max_failed_steps and self.failed_in_a_row >= self.max_failed_steps:
            raise RewardsFailing(self._message(samples))

    def _message(self, samples: Sequence[Sample]) -> str:
        first = self._first if self._first is not None else samples[0]
        names = self.reward_names or tuple(dict.fromkeys(sample.prompt.task for sample in samples))
        response = first.response_text
        quoted = response if len(response) <= _QUOTE_CHARS else response[:_QUOTE_CHARS] + "..."
        return (
            f"the reward failed on every sample of {self.failed_in_a_row} training steps in a row, so the run "
            f"stopped (algorithm.reward.max_failed_steps = {self.max_failed_steps}). Reward: "
            f"{', '.join(map(repr, names))}. First error: {first.reward_info['error']} "
            f"(prompt {first.prompt.id!r}, answer {first.prompt.answer!r}, response {quoted!r}). "
            "Fix the reward function, or raise algorithm.reward.max_failed_steps (0 = never stop)"
            + (f"\n{first.reward_info['traceback']}" if first.reward_info.get("traceback") else "")
        )
