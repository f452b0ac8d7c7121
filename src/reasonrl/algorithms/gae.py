"""Generalised advantage estimation (GAE) from a learned critic: PPO's advantage, registered as "gae".

Token level, as in RLHF PPO (verl, OpenRLHF, ROLL): the state s_t is the prompt plus the first t response
tokens, the action is token y_t, the outcome reward sits on the last real token (minus a per-token KL when
the KL is in the reward), and the state after the last token is terminal (V = 0).
"""

from __future__ import annotations

import torch
from torch import Tensor

from reasonrl.algorithms.advantages import ADVANTAGES, AdvantageInputs, outcome_token_rewards, whiten
from reasonrl.algorithms.masking import valid_mask


def gae(token_rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """(advantages, returns), both [B, T] and zero on padding (Schulman et al., arXiv 1506.02438).

    δ_t = r_t + γ·V_{t+1} − V_t, with V_{t+1} = 0 after the last real token (terminal);
    A_t = δ_t + γλ·A_{t+1} = Σ_l (γλ)^l δ_{t+l};  returns R_t = A_t + V_t (the λ-return, the critic's target).
    λ = 1 gives A_t = G_t − V_t (Monte-Carlo return minus value); λ = 0 gives the one-step TD error δ_t.
    mask must be right-padded (each row's real tokens first): a hole inside a response is an error, since the
    recursion would bridge it.
    """
    valid = valid_mask(mask, token_rewards)
    if values.shape != token_rewards.shape:
        raise ValueError(f"values {tuple(values.shape)} and token_rewards {tuple(token_rewards.shape)} differ")
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gamma and lam must be in [0, 1], got gamma={gamma}, lam={lam}")
    if (valid[:, 1:] & ~valid[:, :-1]).any():
        raise ValueError("mask must be right-padded: a real token follows padding in some row")
    rewards = torch.where(valid, token_rewards, 0.0)
    values = torch.where(valid, values, 0.0)
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    deltas = rewards + gamma * next_values - values
    advantages = torch.zeros_like(deltas)
    running = torch.zeros_like(deltas[:, 0])
    for t in range(deltas.shape[1] - 1, -1, -1):
        running = deltas[:, t] + gamma * lam * running
        advantages[:, t] = running
    advantages = torch.where(valid, advantages, 0.0)
    return advantages, torch.where(valid, advantages + values, 0.0)


def gae_returns(inputs: AdvantageInputs) -> Tensor:
    """The critic's regression targets R_t = A_t + V_t for `inputs` (before any whitening of A)."""
    return gae(_token_rewards(inputs), _values(inputs), inputs.mask, inputs.gamma, inputs.lam)[1]


@ADVANTAGES.register("gae")
def gae_advantages(inputs: AdvantageInputs) -> Tensor:
    """PPO's GAE advantage, whitened over the batch (as verl's `compute_gae_advantage_return`).

    A = GAE(γ = gamma, λ = lam) of the token rewards r_t = R·[t is last] − kl_t against the critic's values,
    then (A − μ) / (σ + eps) with μ and the Bessel-corrected σ over all real tokens. Reads rewards, mask,
    values, kl_penalty, gamma, lam, eps. Groups play no part: PPO's baseline is the critic.
    """
    advantages, _ = gae(_token_rewards(inputs), _values(inputs), inputs.mask, inputs.gamma, inputs.lam)
    return whiten(advantages, inputs.valid(), inputs.eps)


gae_advantages.needs_critic = True  # type: ignore[attr-defined]


def _token_rewards(inputs: AdvantageInputs) -> Tensor:
    return outcome_token_rewards(inputs.rewards, inputs)


def _values(inputs: AdvantageInputs) -> Tensor:
    if inputs.values is None:
        raise ValueError("the gae advantage needs the critic's values (AdvantageInputs.values); got none")
    return inputs.values.to(inputs.dtype)
