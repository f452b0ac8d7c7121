"""Behaviour-policy corrections: per-token weights that importance-correct a policy loss for the gap between
the policy that sampled the tokens (the rollout engine, π_behaviour) and the learner's old policy π_old.

All corrections weight the per-token policy loss by w_t = f(k_t), a constant (stop-gradient) function of

    k_t = π_old(y_t) / π_behaviour(y_t) = exp(old_logprobs − behaviour_logprobs)

- `none`: f(k) = 1, the plain on-policy loss.
- `decoupled`: f(k) = k. AReaL's decoupled PPO (Fu et al., arXiv 2505.24298, after Hilton et al.,
  arXiv 2110.00641): the loss clips against the proximal policy π_prox = π_old and is importance-weighted
  by π_prox / π_behaviour. With `decoupled_cap` = M set, f(k) = k if k ≤ M else 0 (AReaL's
  `behav_imp_weight_cap`): a token whose weight exceeds the cap is masked, so it gets no gradient.
- `tis`: f(k) = min(k, C), C = tis_cap = 2. Truncated importance sampling (Yao, Liu et al.,
  fengyao.notion.site/off-policy-rl; slime `--tis-clip 2`, verl `rollout_is_threshold: 2.0`).
- `icepop`: f(k) = k if α ≤ k ≤ β else 0, α = icepop_low = 0.5, β = icepop_high = 5.0. IcePop (Ring-1T,
  arXiv 2510.18855; slime `icepop_function`): a token outside the band is masked, so it gets no gradient.

The policy loss computes its ratio π_θ / π_old as usual, so with π_old = π_behaviour (k = 1) every
correction leaves the loss unchanged.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from reasonrl.algorithms.masking import masked_max, masked_mean, masked_min, masked_quantile, valid_mask

Correction = Literal["none", "decoupled", "tis", "icepop"]
CORRECTIONS: tuple[str, ...] = get_args(Correction)

LOG_RATIO_BOUND = 20.0
RATIO_QUANTILES = (0.05, 0.5, 0.95)
"""log k is clamped to ±20 before exp so a wild behaviour log-prob cannot overflow the weight."""


def behaviour_weights(
    old_logprobs: Tensor,
    behaviour_logprobs: Tensor | None,
    mask: Tensor,
    *,
    correction: Correction = "none",
    tis_cap: float = 2.0,
    icepop_low: float = 0.5,
    icepop_high: float = 5.0,
    decoupled_cap: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Detached weights w [B, T] (zero on padding) for `correction`, and mismatch metrics.

    Metrics (when behaviour log-probs are given, whatever the correction, so the train–inference gap is
    always visible): behaviour_ratio_mean/min/max and quantiles p05/p50/p95 (of k; the tails show how
    stale or mismatched the sampler is better than the mean), behaviour_weight_mean, behaviour_kl (the k3
    estimate of KL(π_behaviour ‖ π_old), mean of (k − 1) − log k), behaviour_truncated_frac (share of
    tokens with k > tis_cap under `tis`, else 0), behaviour_masked_frac (share outside [α, β] under
    `icepop`, else 0) and behaviour_capped_frac (share with k > decoupled_cap under a capped `decoupled`,
    else 0). All over real tokens.
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown behaviour correction {correction!r}; choose one of: {', '.join(CORRECTIONS)}")
    _check_decoupled_cap(correction, decoupled_cap)
    valid = valid_mask(mask, old_logprobs)
    if behaviour_logprobs is None:
        if correction != "none":
            raise ValueError(
                f"correction {correction!r} needs the behaviour log-probs the rollout engine reported; "
                "got none (use correction 'none' only when the samples are on-policy)"
            )
        return valid.to(old_logprobs.dtype), {}
    if tis_cap < 1:
        raise ValueError(f"tis_cap must be >= 1 (it truncates a weight whose mean is 1), got {tis_cap}")
    if not 0 <= icepop_low <= 1 <= icepop_high:
        raise ValueError(f"IcePop needs 0 <= icepop_low <= 1 <= icepop_high, got [{icepop_low}, {icepop_high}]")
    if behaviour_logprobs.shape != old_logprobs.shape:
        raise ValueError(
            f"behaviour_logprobs {tuple(behaviour_logprobs.shape)} and old_logprobs "
            f"{tuple(old_logprobs.shape)} differ in shape"
        )

    log_k = torch.where(valid, old_logprobs.detach() - behaviour_logprobs.detach(), 0.0)
    log_k = log_k.clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)
    k = torch.exp(log_k)
    zeros = torch.zeros_like(k)
    truncated = torch.zeros_like(valid)
    outside = torch.zeros_like(valid)
    capped = torch.zeros_like(valid)
    if correction == "none":
        weights = torch.ones_like(k)
    elif correction == "decoupled":
        if decoupled_cap is not None:
            capped = k > decoupled_cap
        weights = torch.where(capped, zeros, k)
    elif correction == "tis":
        truncated = k > tis_cap
        weights = k.clamp_max(tis_cap)
    else:
        outside = (k < icepop_low) | (k > icepop_high)
        weights = torch.where(outside, zeros, k)
    weights = torch.where(valid, weights, zeros)
    metrics = {
        "behaviour_ratio_mean": masked_mean(k, valid),
        "behaviour_ratio_min": masked_min(k, valid),
        "behaviour_ratio_max": masked_max(k, valid),
        **{f"behaviour_ratio_p{round(q * 100):02d}": masked_quantile(k, valid, q) for q in RATIO_QUANTILES},
        "behaviour_weight_mean": masked_mean(weights, valid),
        "behaviour_kl": masked_mean(torch.expm1(log_k) - log_k, valid),
        "behaviour_truncated_frac": masked_mean(truncated.to(k.dtype), valid),
        "behaviour_masked_frac": masked_mean(outside.to(k.dtype), valid),
        "behaviour_capped_frac": masked_mean(capped.to(k.dtype), valid),
    }
    return weights, metrics


def _check_decoupled_cap(correction: Correction, decoupled_cap: float | None) -> None:
    """The cap masks by the decoupled weight, so it is refused where it would silently do nothing."""
    if decoupled_cap is None:
        return
    if correction != "decoupled":
        raise ValueError(
            f"decoupled_cap masks tokens by the decoupled importance weight, which correction {correction!r} "
            "does not have; use correction 'decoupled', or leave decoupled_cap unset"
        )
    if not decoupled_cap > 1:
        raise ValueError(
            f"decoupled_cap must be > 1 (it masks the tail of a weight whose mean is 1), got {decoupled_cap}"
        )
