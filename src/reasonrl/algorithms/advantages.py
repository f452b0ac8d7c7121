"""Advantage estimators: outcome rewards of grouped responses → token-level advantages.

Every estimator takes one `AdvantageInputs` and returns advantages of shape [B, T] that are zero on
padding, so the trainer calls `ADVANTAGES.get(config.advantage)(inputs)` whatever the name.

Layout: B responses in contiguous groups of `group_size` (the responses to one prompt are adjacent),
T right-padded response tokens, `mask` [B, T] marking real tokens.

KL in the reward (`kl_penalty`, already multiplied by its coefficient): the token-level estimators
(REINFORCE++) subtract it per token; the sequence-level ones (GRPO, Dr.GRPO, RLOO) subtract its sum over the
response from the outcome reward, R_i − Σ_t kl_{i,t}, as verl does when it sums token rewards into a score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from reasonrl.algorithms.masking import masked_max, masked_mean, masked_min, masked_std, valid_mask
from reasonrl.plugins import Registry

AdvantageScale = Literal["group", "batch", "none"]


@dataclass(frozen=True)
class AdvantageInputs:
    """What every estimator receives; each reads the fields its docstring names.

    rewards: [B] outcome reward per response. mask: [B, T] real response tokens (bool or 0/1).
    group_size: responses per prompt (groups are contiguous). kl_penalty: optional [B, T] per-token KL
    penalty (coefficient included) to take out of the reward. scale: GRPO's divisor (group std, batch std,
    none). gamma: discount of token-level returns (REINFORCE++, GAE). values: optional [B, T] critic values
    V(s_t) of the state before each response token (GAE). lam: GAE's λ. eps: added to every standard deviation
    before dividing. paths: each response's tree path ("0/1/0": one branch index per segment) when tree
    rollouts sampled the group, else None.
    """

    rewards: Tensor
    mask: Tensor
    group_size: int
    kl_penalty: Tensor | None = None
    scale: AdvantageScale = "group"
    gamma: float = 1.0
    values: Tensor | None = None
    lam: float = 1.0
    eps: float = 1e-6
    paths: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.rewards.dim() != 1:
            raise ValueError(f"rewards must have shape [B], got {tuple(self.rewards.shape)}")
        if self.mask.dim() != 2 or self.mask.shape[0] != self.rewards.shape[0]:
            raise ValueError(
                f"mask must have shape [B, T] with B = {self.rewards.shape[0]} (the rewards), "
                f"got {tuple(self.mask.shape)}"
            )
        if self.group_size < 1 or self.rewards.shape[0] % self.group_size:
            raise ValueError(
                f"group_size {self.group_size} must be >= 1 and divide the batch of {self.rewards.shape[0]} "
                "responses (each prompt contributes a whole, contiguous group)"
            )
        if self.kl_penalty is not None and self.kl_penalty.shape != self.mask.shape:
            raise ValueError(
                f"kl_penalty must have the mask's shape {tuple(self.mask.shape)}, got {tuple(self.kl_penalty.shape)}"
            )
        if self.scale not in ("group", "batch", "none"):
            raise ValueError(f"scale must be 'group', 'batch' or 'none', got {self.scale!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {self.lam}")
        if self.paths is not None and len(self.paths) != self.rewards.shape[0]:
            raise ValueError(
                f"paths must name one tree path per response ({self.rewards.shape[0]}), got {len(self.paths)}"
            )
        if self.values is not None and self.values.shape != self.mask.shape:
            raise ValueError(
                f"values must have the mask's shape {tuple(self.mask.shape)}, got {tuple(self.values.shape)}"
            )

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the result: the rewards' own, or float32 for integer rewards."""
        return self.rewards.dtype if self.rewards.is_floating_point() else torch.float32

    def valid(self) -> Tensor:
        """The mask as bool [B, T]."""
        return self.mask.bool()

    def token_kl(self) -> Tensor:
        """The KL penalty with padding zeroed ([B, T], zeros when there is none)."""
        if self.kl_penalty is None:
            return torch.zeros(self.mask.shape, dtype=self.dtype, device=self.rewards.device)
        return torch.where(self.valid(), self.kl_penalty.to(self.dtype), 0.0)

    def sequence_rewards(self) -> Tensor:
        """R_i − Σ_t kl_{i,t}: the outcome reward with the response's KL penalty taken out ([B])."""
        return self.rewards.to(self.dtype) - self.token_kl().sum(dim=-1)


AdvantageEstimator = Callable[[AdvantageInputs], Tensor]
ADVANTAGES: Registry[AdvantageEstimator] = Registry(
    "advantage estimator", call="fn(inputs: AdvantageInputs, *, <options>) -> advantages [B, T], zero on padding"
)
"""An estimator that reads `inputs.values` sets the attribute `needs_critic = True` on itself (as `gae` does):
a run using it then trains a critic whose values fill `AdvantageInputs.values`."""


def needs_critic(estimator: AdvantageEstimator) -> bool:
    """Whether `estimator` reads the critic's values (its `needs_critic` attribute)."""
    return bool(getattr(estimator, "needs_critic", False))


def _group_centred(rewards: Tensor, group_size: int) -> Tensor:
    """R_i − mean_{j in group(i)} R_j, shape [B]; exactly zero for a group whose rewards are all equal.

    The guard matters for non-binary rewards: the float32 mean of eight 0.9s is not 0.9, so the centred
    values come out near 1e-8, and GRPO's division by (σ + eps) with σ also near 1e-8 would blow them up
    to about ±0.06 on every row of a group that carries no signal at all.
    """
    groups = rewards.reshape(-1, group_size)
    centred = groups - groups.mean(dim=-1, keepdim=True)
    equal = groups.amax(dim=-1, keepdim=True) == groups.amin(dim=-1, keepdim=True)
    return torch.where(equal, torch.zeros_like(centred), centred).reshape(-1)


def _per_token(per_response: Tensor, inputs: AdvantageInputs) -> Tensor:
    """Broadcast one value per response over its real tokens; zero on padding."""
    return torch.where(inputs.valid(), per_response[:, None], 0.0)


@ADVANTAGES.register("grpo")
def grpo_advantages(inputs: AdvantageInputs) -> Tensor:
    """GRPO group-relative advantage (Shao et al., DeepSeekMath, arXiv 2402.03300).

    A_i = (R_i − mean_G R) / (σ + eps), with σ chosen by `scale`:
    "group" = std of R within the group (the original GRPO); "batch" = std of R over the whole batch
    (LitePPO: group mean, batch std; Liu et al., "Tricks or Traps", arXiv 2508.08221); "none" = no division
    (then A_i = R_i − mean_G R exactly, without eps: Dr.GRPO). Standard deviations are Bessel-corrected
    (n − 1), like torch.std in verl, TRL and ROLL; eps = 1e-6. A group whose rewards are all equal gets
    zero advantage, and so does every response when group_size = 1. Reads rewards, mask, group_size,
    kl_penalty, scale, eps.
    """
    rewards = inputs.sequence_rewards()
    centred = _group_centred(rewards, inputs.group_size)
    if inputs.scale == "none":
        return _per_token(centred, inputs)
    if inputs.scale == "group":
        groups = rewards.reshape(-1, inputs.group_size)
        std = groups.std(dim=-1, correction=min(1, inputs.group_size - 1))
        std = std.repeat_interleave(inputs.group_size)
    else:
        std = rewards.std(correction=min(1, rewards.numel() - 1))
    return _per_token(centred / (std + inputs.eps), inputs)


@ADVANTAGES.register("dr_grpo")
def dr_grpo_advantages(inputs: AdvantageInputs) -> Tensor:
    """Dr.GRPO advantage (Liu et al., "Understanding R1-Zero-Like Training", arXiv 2503.20783).

    A_i = R_i − mean_G R: GRPO without the division by the group std (the question-level difficulty bias).
    Dr.GRPO's other fix, no 1/|y_i| length normalisation, is the `seq-mean-token-sum-norm` aggregation.
    Reads rewards, mask, group_size, kl_penalty.
    """
    return _per_token(_group_centred(inputs.sequence_rewards(), inputs.group_size), inputs)


@ADVANTAGES.register("rloo")
def rloo_advantages(inputs: AdvantageInputs) -> Tensor:
    """REINFORCE leave-one-out (Kool et al. 2019; Ahmadian et al., arXiv 2402.14740).

    A_i = R_i − (1/(G−1)) Σ_{j≠i} R_j = G/(G−1) · (R_i − mean_G R); zero when G = 1 (no other response to
    compare with). Reads rewards, mask, group_size, kl_penalty.
    """
    size = inputs.group_size
    if size == 1:
        return torch.zeros(inputs.mask.shape, dtype=inputs.dtype, device=inputs.rewards.device)
    centred = _group_centred(inputs.sequence_rewards(), size)
    return _per_token(centred * (size / (size - 1)), inputs)


def discounted_returns(token_rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """G_t = r_t + γ·G_{t+1} over each right-padded response ([B, T]; padding rewards count as 0).

    Returns are zero on padding. γ = 1 is a reverse cumulative sum; otherwise a loop over T (no γ^(−t)
    rescaling, which overflows for long T).
    """
    valid = valid_mask(mask, token_rewards)
    rewards = torch.where(valid, token_rewards, 0.0)
    if gamma == 1.0:
        return torch.where(valid, rewards.flip(-1).cumsum(-1).flip(-1), 0.0)
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + gamma * running
        returns[:, t] = running
    return torch.where(valid, returns, 0.0)


def outcome_token_rewards(outcome: Tensor, inputs: AdvantageInputs) -> Tensor:
    """r_t = outcome_i·[t is the last real token of response i] − kl_t, [B, T], zero on padding."""
    valid = inputs.valid()
    counts = valid.sum(dim=-1, keepdim=True)
    is_last = valid & (valid.cumsum(dim=-1) == counts)
    return torch.where(is_last, outcome.to(inputs.dtype)[:, None], 0.0) - inputs.token_kl()


def whiten(values: Tensor, valid: Tensor, eps: float) -> Tensor:
    """(v − μ) / (σ + eps) over the valid entries (Bessel-corrected σ), zero elsewhere.

    All-equal valid entries whiten to exactly zero (the rounding of μ would otherwise be amplified by
    1 / (σ + eps), as in `_group_centred`)."""
    whitened = (values - masked_mean(values, valid)) / (masked_std(values, valid) + eps)
    constant = masked_max(values, valid) == masked_min(values, valid)
    return torch.where(valid & ~constant, whitened, 0.0)


def _reinforce_pp(outcome: Tensor, inputs: AdvantageInputs) -> Tensor:
    """Outcome on the last real token, minus the per-token KL, discounted, then whitened over the batch."""
    valid = inputs.valid()
    returns = discounted_returns(outcome_token_rewards(outcome, inputs), valid, inputs.gamma)
    return whiten(returns, valid, inputs.eps)


@ADVANTAGES.register("reinforce_pp")
def reinforce_pp_advantages(inputs: AdvantageInputs) -> Tensor:
    """REINFORCE++ (Hu, arXiv 2501.03262).

    Token rewards r_t = R·[t is the last real token] − kl_t; returns G_t = Σ_{s≥t} γ^(s−t) r_s (γ = gamma,
    default 1); then global whitening over all real tokens of the batch, A = (G − μ) / (σ + eps), with μ and
    the Bessel-corrected σ taken over those tokens. Reads rewards, mask, kl_penalty, gamma, eps.
    """
    return _reinforce_pp(inputs.rewards.to(inputs.dtype), inputs)


@ADVANTAGES.register("reinforce_pp_baseline")
def reinforce_pp_baseline_advantages(inputs: AdvantageInputs) -> Tensor:
    """REINFORCE++-baseline (Hu, arXiv 2501.03262; OpenRLHF `reinforce_baseline`).

    Subtract the group mean of the outcome rewards, R_i − mean_G R, then proceed as REINFORCE++ (per-token
    KL, discounted return, whitening over all real tokens of the batch). Reads rewards, mask, group_size,
    kl_penalty, gamma, eps.
    """
    return _reinforce_pp(_group_centred(inputs.rewards.to(inputs.dtype), inputs.group_size), inputs)


def tree_relative_rewards(
    rewards: Tensor, paths: tuple[str, ...], group_size: int, weighting: Literal["size", "average"]
) -> Tensor:
    """TreePO's subtree-relative score of each leaf, [B]: for every depth d, R_i minus the mean reward of the
    leaves of its group whose paths share its first d branch indices (d = 0: the whole group), over the
    subgroups of more than one leaf, combined as a mean weighted by subgroup size ("size") or plain ("average")."""
    relative = torch.zeros_like(rewards)
    for start in range(0, len(paths), group_size):
        rows = range(start, start + group_size)
        parts = {i: paths[i].split("/") if paths[i] else [] for i in rows}
        for i in rows:
            total, weight = 0.0, 0.0
            for depth in range(len(parts[i]) + 1):
                members = [j for j in rows if parts[j][:depth] == parts[i][:depth]]
                if len(members) < 2:
                    continue
                w = float(len(members)) if weighting == "size" else 1.0
                total += w * float(rewards[i] - rewards[members].mean())
                weight += w
            relative[i] = total / weight if weight else 0.0
    return relative


@ADVANTAGES.register("tree")
def tree_advantages(inputs: AdvantageInputs, *, weighting: Literal["size", "average"] = "size") -> Tensor:
    """TreePO's tree advantage (Li et al., arXiv 2508.17445): the subtree-relative score of each leaf
    (`tree_relative_rewards`; weighting "size" is TreePO's code default, "average" the paper's subadv-avg run),
    then as REINFORCE++-baseline: per-token KL, discounted return, whitening over the batch's real tokens.
    Needs the leaves' tree paths (`rollout.tree`). Reads rewards, mask, group_size, paths, kl_penalty, gamma, eps.
    """
    if inputs.paths is None:
        raise ValueError("the tree advantage needs each response's tree path: sample with rollout.tree.enabled")
    if weighting not in ("size", "average"):
        raise ValueError(f"weighting must be 'size' or 'average', got {weighting!r}")
    outcome = tree_relative_rewards(inputs.rewards.to(inputs.dtype), inputs.paths, inputs.group_size, weighting)
    return _reinforce_pp(outcome, inputs)
