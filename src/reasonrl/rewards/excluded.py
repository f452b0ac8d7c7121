"""`RewardUnavailable`: a verifier could not judge a response, and the fault is not the response's.

A code sandbox that could not start, a judge service that is down: scoring such a sample 0 would teach the
policy that its answer was wrong. A verifier (built-in or a user's) raises `RewardUnavailable` instead; the
sample is then marked `excluded`, kept out of the loss (with its group, whose baseline it would bias) and
counted in the step's metrics, never scored as a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reasonrl.data import Prompt
    from reasonrl.rewards.single_response import RewardResult


class RewardUnavailable(Exception):
    """Raised by a verifier that could not score a response for a reason outside the response (see module)."""


EXCLUDED_PREFIX = "excluded: "
"""How the error of an excluded result begins (`excluded: <reward>: <reason>`), kept in stored samples."""


def is_excluded_error(error: str | None) -> bool:
    """Whether a stored reward error says the sample was excluded (no verdict) rather than wrong."""
    return bool(error) and str(error).startswith(EXCLUDED_PREFIX)


def retry_excluded(
    score: Callable[[Sequence[Prompt], Sequence[str]], list[RewardResult]],
    prompts: Sequence[Prompt],
    responses: Sequence[str],
    results: list[RewardResult],
) -> list[RewardResult]:
    """`results` with each excluded one scored once more: a sandbox that failed to start once (a transient
    shortage of processes or memory) usually starts the second time, and a sample judged late beats one lost."""
    again = [i for i, result in enumerate(results) if result.excluded]
    if not again:
        return results
    retried = score([prompts[i] for i in again], [responses[i] for i in again])
    merged = list(results)
    for i, result in zip(again, retried, strict=True):
        merged[i] = result
    return merged
