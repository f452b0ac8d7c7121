"""RewardFailureWatch: a run stops after N steps in a row on which every reward failed, and says why."""

from __future__ import annotations

import pytest

from reasonrl.config import load_config
from reasonrl.data import Prompt
from reasonrl.rewards.failures import RewardFailureWatch, RewardsFailing
from reasonrl.rollout.samples import Sample


def step(errors: list[str | None], response: str = "4-1-7=-4") -> list[Sample]:
    """One step's scored samples; `errors[i]` is sample i's recorded reward error (None = scored fine)."""
    return [
        Sample(
            prompt=Prompt(id=f"p{i}", answer="-4", task="exact", text="4-1-7="),
            group_index=0,
            prompt_ids=[1],
            response_ids=[2],
            behaviour_logprobs=[0.0],
            policy_version=[0],
            finish_reason="stop",
            response_text=response,
            reward_info={"error": error, "components": {}},
        )
        for i, error in enumerate(errors)
    ]


FAILED = ["TypeError: reward() takes 2 positional arguments but 3 were given"] * 4


def test_two_failed_steps_then_a_good_one_reset_the_count() -> None:
    watch = RewardFailureWatch(3)
    watch.observe(step(FAILED))
    watch.observe(step(FAILED))
    assert watch.failed_in_a_row == 2
    watch.observe(step([*FAILED[:3], None]))  # one sample scored: the reward works, sometimes
    assert watch.failed_in_a_row == 0
    watch.observe(step(FAILED))
    watch.observe(step(FAILED))
    assert watch.failed_in_a_row == 2


def test_three_failed_steps_in_a_row_stop_with_the_first_error() -> None:
    watch = RewardFailureWatch(3, ["/home/me/my_reward.py:reward"])
    watch.observe(step(["KeyError: 'first'"] * 4, response="first response"))
    watch.observe(step(FAILED))
    with pytest.raises(RewardsFailing) as caught:
        watch.observe(step(FAILED))
    message = str(caught.value)
    assert "the reward failed on every sample of 3 training steps in a row" in message
    assert "'/home/me/my_reward.py:reward'" in message
    assert "First error: KeyError: 'first' (prompt 'p0', answer '-4', response 'first response')" in message
    assert "raise algorithm.reward.max_failed_steps (0 = never stop)" in message


def test_without_reward_functions_the_message_names_the_task_verifier() -> None:
    with pytest.raises(RewardsFailing, match="Reward: 'exact'"):
        RewardFailureWatch(1).observe(step(FAILED))


def test_zero_never_stops_and_empty_steps_change_nothing() -> None:
    never = RewardFailureWatch(0)
    for _ in range(10):
        never.observe(step(FAILED))
    assert never.failed_in_a_row == 10
    watch = RewardFailureWatch(2)
    watch.observe(step(FAILED))
    watch.observe([])
    with pytest.raises(RewardsFailing):
        watch.observe(step(FAILED))


def test_a_long_response_is_shortened_in_the_message() -> None:
    with pytest.raises(RewardsFailing) as caught:
        RewardFailureWatch(1).observe(step(FAILED, response="x" * 1000))
    assert "'" + "x" * 200 + "...'" in str(caught.value)


def test_the_threshold_comes_from_the_reward_config() -> None:
    reward = load_config(None, ["algorithm.reward.max_failed_steps=5"]).algorithm.reward
    assert RewardFailureWatch.from_config(reward).max_failed_steps == 5
    assert load_config(None, []).algorithm.reward.max_failed_steps == 3


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_a_bad_threshold_says_what_is_allowed(bad: object) -> None:
    with pytest.raises(ValueError, match="max_failed_steps must be an integer >= 0"):
        RewardFailureWatch(bad)  # type: ignore[arg-type]
