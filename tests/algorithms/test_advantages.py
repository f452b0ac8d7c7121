"""Advantage estimators on hand-computed batches (float64, so the expected values are exact to ~1e-15)."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from reasonrl.algorithms import ADVANTAGES, AdvantageInputs, discounted_returns

close = partial(torch.testing.assert_close, rtol=1e-10, atol=1e-12)
F64 = torch.float64
EPS = 1e-6

# Two groups of three responses with different lengths (T = 4, right-padded).
REWARDS = torch.tensor([0.0, 2.0, 4.0, 1.0, 1.0, 7.0], dtype=F64)
LENGTHS = [4, 2, 3, 1, 4, 2]


def lengths_mask(lengths: list[int], width: int) -> torch.Tensor:
    return (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).to(F64)


MASK = lengths_mask(LENGTHS, 4)


def per_token(values: list[float], mask: torch.Tensor = MASK) -> torch.Tensor:
    """One value per response on its real tokens, 0 on padding."""
    return torch.tensor(values, dtype=F64)[:, None] * mask


def run(name: str, **fields: object) -> torch.Tensor:
    inputs = {"rewards": REWARDS, "mask": MASK, "group_size": 3, **fields}
    return ADVANTAGES.get(name)(AdvantageInputs(**inputs))


def test_grpo_divides_by_the_group_std() -> None:
    # group 1: R = [0, 2, 4], mean 2, centred [-2, 0, 2], std = sqrt((4 + 0 + 4) / 2) = 2
    # group 2: R = [1, 1, 7], mean 3, centred [-2, -2, 4], std = sqrt((4 + 4 + 16) / 2) = sqrt(12)
    s1, s2 = 2 + EPS, math.sqrt(12) + EPS
    expected = per_token([-2 / s1, 0.0, 2 / s1, -2 / s2, -2 / s2, 4 / s2])
    close(run("grpo"), expected)
    close(run("grpo", scale="group"), expected)


def test_grpo_batch_scale_is_group_mean_over_batch_std() -> None:
    # LitePPO: centred as above, divided by the std of all six rewards:
    # mean 15/6 = 2.5; squares 6.25 + 0.25 + 2.25 + 2.25 + 2.25 + 20.25 = 33.5; var = 33.5 / 5 = 6.7
    s = math.sqrt(6.7) + EPS
    close(run("grpo", scale="batch"), per_token([-2 / s, 0.0, 2 / s, -2 / s, -2 / s, 4 / s]))


def test_grpo_without_scale_and_dr_grpo_are_the_centred_reward() -> None:
    centred = per_token([-2.0, 0.0, 2.0, -2.0, -2.0, 4.0])
    close(run("grpo", scale="none"), centred)
    close(run("dr_grpo"), centred)


def test_dr_grpo_differs_from_grpo_exactly_by_the_std_division() -> None:
    group_std = per_token([2.0] * 3 + [math.sqrt(12)] * 3)
    close(run("grpo") * (group_std + EPS), run("dr_grpo"))


def test_rloo_uses_the_mean_of_the_other_responses() -> None:
    # R_i - mean of the other two: 0-(2+4)/2, 2-(0+4)/2, 4-(0+2)/2, 1-(1+7)/2, 1-(1+7)/2, 7-(1+1)/2
    close(run("rloo"), per_token([-3.0, 0.0, 3.0, -3.0, -3.0, 6.0]))


def test_single_response_groups_get_zero_advantage() -> None:
    for name in ("grpo", "dr_grpo", "rloo"):
        close(run(name, group_size=1), torch.zeros_like(MASK))


def test_group_with_equal_rewards_gets_zero_not_nan() -> None:
    rewards = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0], dtype=F64)
    # group 2: mean 1/3, centred [-1/3, 2/3, -1/3], std = sqrt((1/9 + 4/9 + 1/9) / 2) = sqrt(1/3)
    s = math.sqrt(1 / 3) + EPS
    close(run("grpo", rewards=rewards), per_token([0.0, 0.0, 0.0, -1 / 3 / s, 2 / 3 / s, -1 / 3 / s]))


@pytest.mark.parametrize("value", [0.9, 0.8, 0.95, 0.6, 1.2])
@pytest.mark.parametrize("size", [8, 16])
@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp_baseline"])
def test_equal_non_binary_rewards_give_exactly_zero_in_float32(name: str, size: int, value: float) -> None:
    # float32 rounding of the group mean left |centred| ~ 1e-8; GRPO divided it by (std ~ 1e-8) + 1e-6 and
    # gave -0.0596 on every row for eight 0.9s (0.106 for 1.2). An equal group carries no signal: exactly 0.
    rewards = torch.full((size,), value)
    advantages = ADVANTAGES.get(name)(AdvantageInputs(rewards, torch.ones(size, 3), size))
    assert torch.equal(advantages, torch.zeros(size, 3))


def test_equal_groups_beside_an_informative_one_stay_zero_under_batch_scale() -> None:
    rewards = torch.tensor([0.9] * 8 + [0.0, 1.0, 0.5, 0.5, 0.0, 1.0, 0.2, 0.8])
    for scale in ("group", "batch", "none"):
        advantages = ADVANTAGES.get("grpo")(AdvantageInputs(rewards, torch.ones(16, 2), 8, scale=scale))
        assert torch.equal(advantages[:8], torch.zeros(8, 2))
        assert advantages[8:].abs().sum() > 0


def test_whitening_constant_returns_gives_exactly_zero() -> None:
    # REINFORCE++ whitens over the batch; a batch whose every reward is 0.9 has nothing to whiten.
    advantages = ADVANTAGES.get("reinforce_pp")(AdvantageInputs(torch.full((8,), 0.9), torch.ones(8, 4), 8))
    assert torch.equal(advantages, torch.zeros(8, 4))


def test_reinforce_pp_whitens_the_return_over_all_real_tokens() -> None:
    # gamma = 1, no KL: every real token's return is its response's reward.
    # token values: 0 x4, 2 x2, 4 x3, 1 x1, 1 x4, 7 x2 (16 tokens); sum 35 -> mean 35/16
    # sum of squares 0 + 8 + 48 + 1 + 4 + 98 = 159; sum (v - mean)^2 = 159 - 1225/16 = 1319/16; var = 1319/240
    mean, s = 35 / 16, math.sqrt(1319 / 240) + EPS
    close(run("reinforce_pp"), per_token([(r - mean) / s for r in [0.0, 2.0, 4.0, 1.0, 1.0, 7.0]]))


def test_reinforce_pp_baseline_subtracts_the_group_mean_first() -> None:
    # centred rewards [-2, 0, 2, -2, -2, 4]; token values -2 x4, 0 x2, 2 x3, -2 x1, -2 x4, 4 x2
    # sum -8 + 0 + 6 - 2 - 8 + 8 = -4 -> mean -1/4; sum of squares 16 + 0 + 12 + 4 + 16 + 32 = 80
    # sum (v - mean)^2 = 80 - 16/16 = 79; var = 79/15
    mean, s = -0.25, math.sqrt(79 / 15) + EPS
    centred = [-2.0, 0.0, 2.0, -2.0, -2.0, 4.0]
    close(run("reinforce_pp_baseline"), per_token([(c - mean) / s for c in centred]))


# One group of two responses of lengths 3 and 2, a per-token KL penalty (9.0 sits on padding) and gamma 0.5.
SMALL_REWARDS = torch.tensor([1.0, 0.0], dtype=F64)
SMALL_MASK = lengths_mask([3, 2], 3)
SMALL_KL = torch.tensor([[0.1, 0.2, 0.3], [0.1, 0.1, 9.0]], dtype=F64)


def small(name: str, **fields: object) -> torch.Tensor:
    inputs = AdvantageInputs(SMALL_REWARDS, SMALL_MASK, 2, kl_penalty=SMALL_KL, **fields)
    return ADVANTAGES.get(name)(inputs)


def test_discounted_returns() -> None:
    # row 0 rewards [-0.1, -0.2, 0.7]: G2 = 0.7, G1 = -0.2 + 0.5*0.7 = 0.15, G0 = -0.1 + 0.5*0.15 = -0.025
    # row 1 rewards [-0.1, -0.1, pad]: G1 = -0.1, G0 = -0.1 + 0.5*(-0.1) = -0.15
    rewards = torch.tensor([[-0.1, -0.2, 0.7], [-0.1, -0.1, 5.0]], dtype=F64)
    expected = torch.tensor([[-0.025, 0.15, 0.7], [-0.15, -0.1, 0.0]], dtype=F64)
    close(discounted_returns(rewards, SMALL_MASK, 0.5), expected)
    close(
        discounted_returns(rewards, SMALL_MASK, 1.0),
        torch.tensor([[0.4, 0.5, 0.7], [-0.2, -0.1, 0.0]], dtype=F64),
    )


def test_reinforce_pp_with_kl_penalty_and_discount() -> None:
    # token rewards: row 0 [-0.1, -0.2, 1 - 0.3], row 1 [-0.1, 0 - 0.1]
    # returns (as in test_discounted_returns) [-0.025, 0.15, 0.7, -0.15, -0.1]; mean 0.575/5 = 0.115
    # deviations -0.14, 0.035, 0.585, -0.265, -0.215; squares sum 0.4795; var = 0.4795/4 = 0.119875
    mean, s = 0.115, math.sqrt(0.119875) + EPS
    expected = torch.tensor([[-0.025, 0.15, 0.7], [-0.15, -0.1, mean]], dtype=F64)
    close(small("reinforce_pp", gamma=0.5), (expected - mean) / s * SMALL_MASK)


def test_reinforce_pp_baseline_with_kl_penalty_and_discount() -> None:
    # group mean of [1, 0] is 0.5 -> outcomes [0.5, -0.5]
    # row 0 rewards [-0.1, -0.2, 0.5 - 0.3]: G2 = 0.2, G1 = -0.2 + 0.1 = -0.1, G0 = -0.1 - 0.05 = -0.15
    # row 1 rewards [-0.1, -0.5 - 0.1]: G1 = -0.6, G0 = -0.1 - 0.3 = -0.4
    # values [-0.15, -0.1, 0.2, -0.4, -0.6]: mean -1.05/5 = -0.21
    # deviations 0.06, 0.11, 0.41, -0.19, -0.39; squares sum 0.372; var = 0.372/4 = 0.093
    mean, s = -0.21, math.sqrt(0.093) + EPS
    expected = torch.tensor([[-0.15, -0.1, 0.2], [-0.4, -0.6, mean]], dtype=F64)
    close(small("reinforce_pp_baseline", gamma=0.5), (expected - mean) / s * SMALL_MASK)


def test_sequence_estimators_take_the_summed_kl_out_of_the_reward() -> None:
    # R - sum of real-token KL: 1 - 0.6 = 0.4 and 0 - 0.2 = -0.2 (the 9.0 on padding is ignored)
    # mean 0.1, centred [0.3, -0.3], std = sqrt((0.09 + 0.09) / 1) = sqrt(0.18)
    s = math.sqrt(0.18) + EPS
    close(small("grpo"), per_token([0.3 / s, -0.3 / s], SMALL_MASK))
    close(small("dr_grpo"), per_token([0.3, -0.3], SMALL_MASK))
    close(small("rloo"), per_token([0.6, -0.6], SMALL_MASK))


@pytest.mark.parametrize("name", ADVANTAGES.names())
def test_every_estimator_is_zero_on_padding_and_keeps_the_dtype(name: str) -> None:
    # values: the critic's, which only gae reads (garbage on padding must not leak)
    values = torch.where(MASK.bool(), 0.25, 99.0)
    paths = ("0", "1/0", "1/1") * 2  # only tree reads them
    advantages = run(name, kl_penalty=torch.full_like(MASK, 0.5), gamma=0.9, values=values, lam=0.95, paths=paths)
    assert advantages.shape == MASK.shape and advantages.dtype == F64
    assert torch.all(advantages[MASK == 0] == 0)
    assert torch.isfinite(advantages).all()


def test_integer_rewards_and_bool_mask_give_float32() -> None:
    advantages = ADVANTAGES.get("grpo")(AdvantageInputs(torch.tensor([1, 0]), torch.ones(2, 2, dtype=torch.bool), 2))
    assert advantages.dtype == torch.float32


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"group_size": 4}, "divide the batch"),
        ({"mask": torch.ones(5, 4)}, "mask must have shape"),
        ({"rewards": torch.ones(6, 1)}, "rewards must have shape"),
        ({"kl_penalty": torch.ones(6, 3)}, "kl_penalty must have"),
        ({"scale": "prompt"}, "scale must be"),
        ({"gamma": 1.5}, "gamma must be"),
    ],
)
def test_bad_inputs_are_named(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdvantageInputs(**{"rewards": REWARDS, "mask": MASK, "group_size": 3, **fields})
