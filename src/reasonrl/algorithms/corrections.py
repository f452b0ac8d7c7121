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

Corrections are registered in `CORRECTIONS` as `fn(k [B, T], valid [B, T], *, <options>) -> (weights [B, T],
metrics)`; `behaviour_weights` computes k, zeroes the padding and adds the ratio metrics every correction
shares, so a correction returns only its own weights and the metrics about what it did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from reasonrl.algorithms.masking import masked_max, masked_mean, masked_min, masked_quantile, valid_mask
from reasonrl.plugins import Registry

Correction = Callable[..., tuple[Tensor, dict[str, Tensor]]]
CORRECTIONS: Registry[Correction] = Registry(
    "behaviour correction",
    call="fn(k [B, T] = π_old/π_behaviour, valid [B, T], *, <options>) -> (weights [B, T], metrics)",
)

LOG_RATIO_BOUND = 20.0
RATIO_QUANTILES = (0.05, 0.5, 0.95)
"""log k is clamped to ±20 before exp so a wild behaviour log-prob cannot overflow the weight."""


@CORRECTIONS.register("none")
def no_correction(k: Tensor, valid: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """w = 1: the plain on-policy loss."""
    return torch.ones_like(k), {}


@CORRECTIONS.register("decoupled")
def decoupled_correction(
    k: Tensor, valid: Tensor, *, decoupled_cap: float | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """w = k, or 0 where k > decoupled_cap (AReaL's behav_imp_weight_cap); metric behaviour_capped_frac."""
    if decoupled_cap is None:
        return k, {}
    if not decoupled_cap > 1:
        raise ValueError(
            f"decoupled_cap must be > 1 (it masks the tail of a weight whose mean is 1), got {decoupled_cap}"
        )
    capped = k > decoupled_cap
    weights = torch.where(capped, torch.zeros_like(k), k)
    return weights, {"behaviour_capped_frac": masked_mean(capped.to(k.dtype), valid)}


@CORRECTIONS.register("tis")
def truncated_importance_sampling(
    k: Tensor, valid: Tensor, *, tis_cap: float = 2.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """w = min(k, tis_cap); metric behaviour_truncated_frac (share of tokens with k > tis_cap)."""
    if tis_cap < 1:
        raise ValueError(f"tis_cap must be >= 1 (it truncates a weight whose mean is 1), got {tis_cap}")
    truncated = k > tis_cap
    return k.clamp_max(tis_cap), {"behaviour_truncated_frac": masked_mean(truncated.to(k.dtype), valid)}


@CORRECTIONS.register("icepop")
def icepop_correction(
    k: Tensor, valid: Tensor, *, icepop_low: float = 0.5, icepop_high: float = 5.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """w = k inside [icepop_low, icepop_high], else 0; metric behaviour_masked_frac (share outside)."""
    if not 0 <= icepop_low <= 1 <= icepop_high:
        raise ValueError(f"IcePop needs 0 <= icepop_low <= 1 <= icepop_high, got [{icepop_low}, {icepop_high}]")
    outside = (k < icepop_low) | (k > icepop_high)
    weights = torch.where(outside, torch.zeros_like(k), k)
    return weights, {"behaviour_masked_frac": masked_mean(outside.to(k.dtype), valid)}


def behaviour_weights(
    old_logprobs: Tensor,
    behaviour_logprobs: Tensor | None,
    mask: Tensor,
    *,
    correction: str = "none",
    **options: Any,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Detached weights w [B, T] (zero on padding) of the registered `correction` with its `options`, and
    mismatch metrics.

    Metrics (when behaviour log-probs are given, whatever the correction, so the train–inference gap is
    always visible): behaviour_ratio_mean/min/max and quantiles p05/p50/p95 (of k; the tails show how
    stale or mismatched the sampler is better than the mean), behaviour_weight_mean, behaviour_kl (the k3
    estimate of KL(π_behaviour ‖ π_old), mean of (k − 1) − log k), plus the correction's own (tis:
    behaviour_truncated_frac, icepop: behaviour_masked_frac, a capped decoupled: behaviour_capped_frac).
    All over real tokens.
    """
    function = CORRECTIONS.get(correction)
    for key in options:
        if not CORRECTIONS.accepts(correction, key):
            raise ValueError(
                f"behaviour correction {correction!r} takes no {key!r}; its options are "
                f"{sorted(CORRECTIONS.options(correction)) or 'none'}"
            )
    valid = valid_mask(mask, old_logprobs)
    if behaviour_logprobs is None:
        if correction != "none":
            raise ValueError(
                f"correction {correction!r} needs the behaviour log-probs the rollout engine reported; "
                "got none (use correction 'none' only when the samples are on-policy)"
            )
        return valid.to(old_logprobs.dtype), {}
    if behaviour_logprobs.shape != old_logprobs.shape:
        raise ValueError(
            f"behaviour_logprobs {tuple(behaviour_logprobs.shape)} and old_logprobs "
            f"{tuple(old_logprobs.shape)} differ in shape"
        )

    log_k = torch.where(valid, old_logprobs.detach() - behaviour_logprobs.detach(), 0.0)
    log_k = log_k.clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)
    k = torch.exp(log_k)
    weights, own = function(k, valid, **options)
    weights = torch.where(valid, weights, torch.zeros_like(k))
    metrics = {
        "behaviour_ratio_mean": masked_mean(k, valid),
        "behaviour_ratio_min": masked_min(k, valid),
        "behaviour_ratio_max": masked_max(k, valid),
        **{f"behaviour_ratio_p{round(q * 100):02d}": masked_quantile(k, valid, q) for q in RATIO_QUANTILES},
        "behaviour_weight_mean": masked_mean(weights, valid),
        "behaviour_kl": masked_mean(torch.expm1(log_k) - log_k, valid),
        **own,
    }
    return weights, metrics
