"""DAPO dynamic sampling's group filter: which prompt groups carry a learning signal.

A group whose responses all got the same reward has zero group-relative advantage (GRPO, Dr.GRPO, RLOO),
so it adds no policy gradient and only dilutes the token-mean of the loss. DAPO (Yu et al.,
arXiv 2503.14476, "dynamic sampling") drops such groups and samples more prompts until the batch is full;
the refill loop lives in `reasonrl.rollout.scheduler` (both pipelines), this is the decision it makes.
"""

from __future__ import annotations

import torch
from torch import Tensor


def informative_groups(rewards: Tensor, group_size: int, *, tolerance: float = 0.0) -> Tensor:
    """Bool [B / group_size]: True for each group whose rewards are not all equal.

    rewards: [B] outcome rewards, groups contiguous (rows i*G .. i*G + G − 1 answer prompt i). A group is
    uninformative when max − min ≤ tolerance (0 = exactly equal, the DAPO rule `std == 0`). A group of one
    response is never informative. NaN rewards make a group informative (max − min is NaN, not ≤ tolerance),
    so a broken reward is trained on and shows up, rather than being filtered silently.
    """
    if rewards.dim() != 1:
        raise ValueError(f"rewards must have shape [B], got {tuple(rewards.shape)}")
    if group_size < 1 or rewards.shape[0] % group_size:
        raise ValueError(
            f"group_size {group_size} must be >= 1 and divide the {rewards.shape[0]} rewards (whole, contiguous groups)"
        )
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    groups = rewards.reshape(-1, group_size)
    spread = groups.amax(dim=-1) - groups.amin(dim=-1)
    return ~(spread <= tolerance)


def kept_rows(keep: Tensor, group_size: int) -> Tensor:
    """Row indices [K * group_size] of the groups marked True in `keep` [B / group_size], in order."""
    if keep.dim() != 1 or keep.dtype != torch.bool:
        raise ValueError(f"keep must be a 1-D bool tensor, got {keep.dtype} of shape {tuple(keep.shape)}")
    groups = keep.nonzero().reshape(-1)
    return (groups[:, None] * group_size + torch.arange(group_size)[None, :]).reshape(-1)
