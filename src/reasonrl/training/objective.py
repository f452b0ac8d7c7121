"""Config → algorithm functions: the advantages of a batch and the named loss terms of a micro-batch.

The only module that reads `AlgorithmConfig` for the learner; everything it calls is a pure function from
`reasonrl.algorithms`, looked up by name, so neither the learner nor the pipeline branches on an algorithm.
Every term is normalised by counts of the whole mini-batch (`Normalisers`), so micro-batch gradients add up
to the mini-batch gradient exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from reasonrl.algorithms import (
    ADVANTAGES,
    KL_ESTIMATORS,
    LOSS_AGGREGATIONS,
    AdvantageInputs,
    aggregate_loss,
    credit_weights,
    gae_returns,
    loss_denominator,
    policy_loss,
)
from reasonrl.algorithms.masking import has_holes, masked_mean, masked_std, pack, packed_positions, unpack
from reasonrl.config.schema import AlgorithmConfig, AttentionCreditConfig
from reasonrl.training.batch import Batch


def needs_reference(algorithm: AlgorithmConfig) -> bool:
    """A frozen reference model is loaded only when a KL term uses it."""
    return algorithm.kl_coef > 0


def needs_critic(algorithm: AlgorithmConfig) -> bool:
    """A critic (value model) is built only when the advantage estimator reads values."""
    return algorithm.needs_critic()


@dataclass(frozen=True)
class Normalisers:
    """Mini-batch-wide denominators: of the policy loss's aggregation mode, and the real-token count."""

    policy: torch.Tensor
    tokens: torch.Tensor

    @classmethod
    def of(cls, mini: Batch, algorithm: AlgorithmConfig, max_new_tokens: int) -> Normalisers:
        mode = algorithm.loss_aggregation
        # A mode that declares norm_constant (Dr.GRPO's) divides by the longest allowed response.
        norm = float(max_new_tokens) if LOSS_AGGREGATIONS.accepts(mode, "norm_constant") else None
        return cls(
            policy=loss_denominator(
                mini.response_mask, mode, norm_constant=norm, **algorithm.options("loss_aggregation")
            ),
            tokens=mini.response_mask.sum().clamp_min(1),
        )


def advantage_inputs(
    algorithm: AlgorithmConfig, rewards: Sequence[float], batch: Batch, group_size: int
) -> tuple[AdvantageInputs, dict[str, float]]:
    """What the estimators read, from the batch (KL in the reward when configured, the critic's `values`
    when the batch has them), and the KL metric."""
    mask = batch.response_mask
    metrics: dict[str, float] = {}
    kl_penalty = None
    if algorithm.kl_in_reward:
        kl = KL_ESTIMATORS.get(algorithm.kl_estimator)(
            _required(batch.old_logprobs, "old_logprobs"),
            _required(batch.ref_logprobs, "ref_logprobs"),
            **algorithm.options("kl_estimator"),
        )
        metrics["kl/mean"] = float(masked_mean(kl, mask.bool()))
        kl_penalty = algorithm.kl_coef * kl
    inputs = AdvantageInputs(
        rewards=torch.tensor(list(rewards), dtype=torch.float32),
        mask=mask,
        group_size=group_size,
        kl_penalty=kl_penalty,
        scale=algorithm.advantage_scale,
        gamma=algorithm.gamma,
        values=batch.values,
        lam=algorithm.gae_lambda,
        paths=batch.tree_paths,
    )
    return inputs, metrics


def compute_advantages(
    algorithm: AlgorithmConfig, rewards: Sequence[float], batch: Batch, group_size: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """Token-level advantages [B, T] for the configured estimator, with KL-in-reward when configured, zeroed
    where the batch's `advantage_keep` mask (AsyPPO's I^A, from a critic ensemble) is 0 and scaled by its
    `credit_weights` (attention-guided credit) when it has them."""
    inputs, metrics = advantage_inputs(algorithm, rewards, batch, group_size)
    valid = inputs.valid()
    advantages = on_sampled_tokens(ADVANTAGES.get(algorithm.advantage), inputs, **algorithm.options("advantage"))
    for weights in (batch.advantage_keep, batch.credit_weights):
        if weights is not None:
            advantages = advantages * weights
    metrics["advantage/mean"] = float(masked_mean(advantages, valid))
    metrics["advantage/std"] = float(masked_std(advantages, valid))
    return advantages, metrics


def attention_credit(
    config: AttentionCreditConfig, batch: Batch, attention: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """[B, T] credit weights (zero on padding) from each row's probe attention maps [H, N, N], and metrics."""
    rows = [
        credit_weights(
            maps,
            len(prompt),
            strategy=config.strategy,
            window=config.window,
            future_near=config.future_near,
            future_far=config.future_far,
            head_share=config.head_share,
            top_share=config.top_share,
            amplification=config.amplification,
            alpha=config.coupling_alpha,
            coupling_window=config.coupling_window,
        ).tolist()
        for maps, prompt in zip(attention, batch.prompt_ids, strict=True)
    ]
    weights = batch.padded(rows)
    valid = batch.response_mask.bool()
    metrics = {
        "credit/weight_mean": float(masked_mean(weights, valid)),
        "credit/amplified_share": float(masked_mean((weights > 1).float(), valid)),
    }
    return weights, metrics


def compute_returns(
    algorithm: AlgorithmConfig, rewards: Sequence[float], batch: Batch, group_size: int
) -> torch.Tensor:
    """The critic's targets [B, T]: GAE's λ-returns A_t + V_t against `batch.values`."""
    return on_sampled_tokens(gae_returns, advantage_inputs(algorithm, rewards, batch, group_size)[0])


def on_sampled_tokens(estimator: Callable[..., torch.Tensor], inputs: AdvantageInputs, **options: Any) -> torch.Tensor:
    """`estimator(inputs)` [B, T], computed over the sampled tokens alone when the mask has holes (multi-turn
    episodes): each row's sampled tokens are packed to the left, the estimator runs on that right-padded batch
    (discounting and GAE then step from one action to the next, over no environment token), and the result is
    put back, zero at the environment's tokens. A right-padded mask is passed through untouched."""
    if not has_holes(inputs.mask):
        return estimator(inputs, **options)
    index, packed = packed_positions(inputs.mask)
    squeezed = replace(
        inputs,
        mask=packed,
        kl_penalty=None if inputs.kl_penalty is None else pack(inputs.kl_penalty, index, packed),
        values=None if inputs.values is None else pack(inputs.values, index, packed),
    )
    return unpack(estimator(squeezed, **options), index, packed, inputs.mask.shape[1])


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
    advantages = _required(part.advantages, "advantages").to(device)
    behaviour_logprobs = _on(part.behaviour_logprobs, device)
    # Without a separate pre-update pass (Learner.needs_old_logprobs), the policy has not moved yet.
    old_logprobs = _on(part.old_logprobs, device)
    if old_logprobs is None:
        old_logprobs = logprobs.detach()
    per_token, loss_metrics = policy_loss(
        algorithm.policy_loss,
        logprobs,
        old_logprobs,
        advantages,
        mask,
        behaviour_logprobs=behaviour_logprobs,
        correction=algorithm.correction,
        **algorithm.options("policy_loss"),
        **algorithm.options("correction"),
    )
    terms = {
        "policy": aggregate_loss(
            per_token,
            mask,
            algorithm.loss_aggregation,
            denominator=norms.policy.to(device),
            **algorithm.options("loss_aggregation"),
        )
    }
    tokens = norms.tokens.to(device)
    share = float(mask.sum() / tokens)
    metrics = {
        f"policy/{name}": float(value) if name.endswith(("_max", "_min")) else float(value) * share
        for name, value in loss_metrics.items()
    }
    metrics["entropy/mean"] = float((entropy.detach() * mask).sum() / tokens)
    if algorithm.kl_coef > 0 and not algorithm.kl_in_reward:
        kl = KL_ESTIMATORS.get(algorithm.kl_estimator)(
            logprobs, _required(part.ref_logprobs, "ref_logprobs").to(device), **algorithm.options("kl_estimator")
        )
        terms["kl"] = algorithm.kl_coef * (kl * mask).sum() / tokens
        metrics["kl/mean"] = float((kl.detach() * mask).sum() / tokens)
    if algorithm.entropy_coef > 0:
        # AsyPPO's I^H: tokens where the critics disagree most earn no entropy bonus (weight 0).
        weights = mask if part.entropy_weights is None else part.entropy_weights.to(device)
        terms["entropy"] = -algorithm.entropy_coef * (entropy * mask * weights).sum() / tokens
    return terms, metrics


def _on(value: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if value is None else value.to(device)


def _required(value: torch.Tensor | None, name: str) -> torch.Tensor:
    """A batch field this configuration needs; None means the batch was not prepared for it."""
    if value is None:
        raise ValueError(f"the batch has no {name}: build it with Learner.prepare for this algorithm config")
    return value
