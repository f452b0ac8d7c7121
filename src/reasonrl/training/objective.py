"""Config → algorithm functions: the advantages of a batch and the named loss terms of a micro-batch.

The only module that reads `AlgorithmConfig` for the learner; everything it calls is a pure function from
`reasonrl.algorithms`, looked up by name, so neither the learner nor the pipeline branches on an algorithm.
Every term is normalised by counts of the whole mini-batch (`Normalisers`), so micro-batch gradients add up
to the mini-batch gradient exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from reasonrl.algorithms import (
    ADVANTAGES,
    KL_ESTIMATORS,
    AdvantageInputs,
    aggregate_loss,
    loss_denominator,
    policy_loss,
)
from reasonrl.algorithms.masking import masked_mean, masked_std
from reasonrl.config.schema import AlgorithmConfig
from reasonrl.training.batch import Batch


def needs_reference(algorithm: AlgorithmConfig) -> bool:
    """A frozen reference model is loaded only when a KL term uses it."""
    return algorithm.kl_coef > 0


@dataclass(frozen=True)
class Normalisers:
    """Mini-batch-wide denominators: of the policy loss's aggregation mode, and the real-token count."""

    policy: torch.Tensor
    tokens: torch.Tensor

    @classmethod
    def of(cls, mini: Batch, algorithm: AlgorithmConfig, max_new_tokens: int) -> Normalisers:
        mode = algorithm.loss_aggregation
        norm = float(max_new_tokens) if mode == "seq-mean-token-sum-norm" else None
        return cls(
            policy=loss_denominator(mini.response_mask, mode, norm_constant=norm),
            tokens=mini.response_mask.sum().clamp_min(1),
        )


def compute_advantages(
    algorithm: AlgorithmConfig, rewards: Sequence[float], batch: Batch, group_size: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """Token-level advantages [B, T] for the configured estimator, with KL-in-reward when configured."""
    mask = batch.response_mask
    metrics: dict[str, float] = {}
    kl_penalty = None
    if algorithm.kl_in_reward:
        kl = KL_ESTIMATORS.get(algorithm.kl_estimator)(batch.tensors["old_logprobs"], batch.tensors["ref_logprobs"])
        metrics["kl/mean"] = float(masked_mean(kl, mask.bool()))
        kl_penalty = algorithm.kl_coef * kl
    inputs = AdvantageInputs(
        rewards=torch.tensor(list(rewards), dtype=torch.float32),
        mask=mask,
        group_size=group_size,
        kl_penalty=kl_penalty,
        scale=algorithm.advantage_scale,
    )
    advantages = ADVANTAGES.get(algorithm.advantage)(inputs)
    valid = mask.bool()
    metrics["advantage/mean"] = float(masked_mean(advantages, valid))
    metrics["advantage/std"] = float(masked_std(advantages, valid))
    return advantages, metrics


def loss_terms(
    algorithm: AlgorithmConfig,
    part: Batch,
    logprobs: torch.Tensor,
    entropy: torch.Tensor,
    norms: Normalisers,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Named loss components of one micro-batch (each already divided by its mini-batch normaliser), and
    the micro-batch's metrics weighted by its share of the mini-batch's tokens (so they add up to means)."""
    device = logprobs.device
    mask = part.response_mask.to(device)
    tensors = {name: value.to(device) for name, value in part.tensors.items()}
    # Without a separate pre-update pass (Learner.needs_old_logprobs), the policy has not moved yet.
    old_logprobs = tensors.get("old_logprobs", logprobs.detach())
    per_token, loss_metrics = policy_loss(
        algorithm.policy_loss,
        logprobs,
        old_logprobs,
        tensors["advantages"],
        mask,
        behaviour_logprobs=tensors.get("behaviour_logprobs"),
        correction=algorithm.correction,
        clip_low=algorithm.clip_low,
        clip_high=algorithm.clip_high,
        dual_clip=algorithm.dual_clip,
        tis_cap=algorithm.tis_cap,
        icepop_low=algorithm.icepop_low,
        icepop_high=algorithm.icepop_high,
    )
    terms = {"policy": aggregate_loss(per_token, mask, algorithm.loss_aggregation, denominator=norms.policy.to(device))}
    tokens = norms.tokens.to(device)
    share = float(mask.sum() / tokens)
    metrics = {
        f"policy/{name}": float(value) if name.endswith(("_max", "_min")) else float(value) * share
        for name, value in loss_metrics.items()
    }
    metrics["entropy/mean"] = float((entropy.detach() * mask).sum() / tokens)
    if algorithm.kl_coef > 0 and not algorithm.kl_in_reward:
        kl = KL_ESTIMATORS.get(algorithm.kl_estimator)(logprobs, tensors["ref_logprobs"])
        terms["kl"] = algorithm.kl_coef * (kl * mask).sum() / tokens
        metrics["kl/mean"] = float((kl.detach() * mask).sum() / tokens)
    if algorithm.entropy_coef > 0:
        terms["entropy"] = -algorithm.entropy_coef * (entropy * mask).sum() / tokens
    return terms, metrics
