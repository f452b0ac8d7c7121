"""The policy-loss family: per-token losses from new/old log-probs and advantages, selected by name.

Every loss in `POLICY_LOSSES` has the signature

    fn(logprobs, old_logprobs, advantages, mask, *, <options>) -> (per_token_loss [B, T], metrics)

where the built-ins' options are clip_low=0.2, clip_high=0.2, dual_clip=None (not cispo) and
log_ratio_clamp=20.0; a loss declares the options it reads as keyword-only parameters, and the config's
`algorithm.clip_low` / `clip_high` / `dual_clip` reach only the losses that declare them.

with logprobs carrying the gradient (log π_θ), old_logprobs the proximal policy π_old the ratio is taken
against, advantages [B, T] and mask [B, T]. The loss is zero on padding; aggregate it with
`aggregation.aggregate_loss`. `policy_loss(name, ..., behaviour_logprobs=..., correction=...)` adds the
behaviour-policy correction (`corrections`) on top: it is what a trainer calls.

| name         | ratio                                | clip                                         |
|--------------|--------------------------------------|----------------------------------------------|
| `ppo`        | token r_t = π_θ/π_old                | PPO clip [1−ε_l, 1+ε_h], optional dual clip  |
| `gspo`       | sequence s_i = exp(mean_t log r_t)   | PPO clip on s_i, optional dual clip          |
| `gspo_token` | sg(s_i)·π_θ(y_t)/sg(π_θ(y_t))        | PPO clip, optional dual clip                 |
| `gppo`       | token r_t                            | gradient-preserving clip, optional dual clip |
| `cispo`      | token r_t                            | sg(clip(r_t)) as a REINFORCE weight          |

Metrics (0-dim, detached, over real tokens): clip_frac_high / clip_frac_low (share of tokens where the
upper / lower clip bound is active in the loss), dual_clip_frac, ratio_mean, ratio_max (of the ratio the
loss clips) and approx_kl (k3 estimate of KL(π_old ‖ π_θ) from the token ratios, mean of (r − 1) − log r).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from reasonrl.algorithms.corrections import CORRECTIONS, behaviour_weights
from reasonrl.algorithms.masking import masked_max, masked_mean
from reasonrl.plugins import Registry

PolicyLossOutput = tuple[Tensor, dict[str, Tensor]]
PolicyLoss = Callable[..., PolicyLossOutput]
POLICY_LOSSES: Registry[PolicyLoss] = Registry(
    "policy loss",
    call="fn(logprobs [B, T], old_logprobs [B, T], advantages [B, T], mask [B, T], *, <options>) -> "
    "(per-token loss [B, T], metrics)",
)


def _masked(tensor: Tensor, valid: Tensor) -> Tensor:
    """Zero the padding, so garbage there (inf, nan) never reaches a value or a gradient."""
    return torch.where(valid, tensor, 0.0)


def _prologue(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None,
    log_ratio_clamp: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Check shapes and knobs; return (valid, log π_θ − log π_old, advantages), both zero on padding."""
    if logprobs.dim() != 2:
        raise ValueError(f"logprobs must have shape [B, T], got {tuple(logprobs.shape)}")
    for name, tensor in (("old_logprobs", old_logprobs), ("advantages", advantages), ("mask", mask)):
        if tensor.shape != logprobs.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, logprobs {tuple(logprobs.shape)}")
    if not 0 <= clip_low < 1:
        raise ValueError(f"clip_low must be in [0, 1), got {clip_low}")
    if clip_high < 0:
        raise ValueError(f"clip_high must be >= 0, got {clip_high}")
    if dual_clip is not None and dual_clip <= 1:
        raise ValueError(f"dual_clip must be > 1 (or None to turn it off), got {dual_clip}")
    if log_ratio_clamp <= 0:
        raise ValueError(f"log_ratio_clamp must be positive, got {log_ratio_clamp}")
    valid = mask.bool()
    return valid, _masked(logprobs - old_logprobs, valid), _masked(advantages, valid)


def _metrics(
    ratio: Tensor,
    token_log_ratio: Tensor,
    valid: Tensor,
    *,
    high_active: Tensor,
    low_active: Tensor,
    dual_active: Tensor,
) -> dict[str, Tensor]:
    ratio, token_log_ratio = ratio.detach(), token_log_ratio.detach()
    return {
        "clip_frac_high": masked_mean(high_active.to(ratio.dtype), valid),
        "clip_frac_low": masked_mean(low_active.to(ratio.dtype), valid),
        "dual_clip_frac": masked_mean(dual_active.to(ratio.dtype), valid),
        "ratio_mean": masked_mean(ratio, valid),
        "ratio_max": masked_max(ratio, valid),
        "approx_kl": masked_mean(torch.expm1(token_log_ratio) - token_log_ratio, valid),
    }


def _clipped_surrogate(
    ratio: Tensor,
    token_log_ratio: Tensor,
    advantages: Tensor,
    valid: Tensor,
    *,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None,
    preserve_gradient: bool,
) -> PolicyLossOutput:
    """L = max(−A·ρ, −A·clip(ρ, 1−ε_l, 1+ε_h)), then for A < 0: L = min(L, −A·c) (dual clip).

    preserve_gradient (GPPO): the clip bounds are (1−ε_l)·ρ/sg(ρ) and (1+ε_h)·ρ/sg(ρ), equal in value to
    1−ε_l and 1+ε_h but carrying the gradient of ρ, so a clipped token keeps the gradient (1±ε)·A·∇log π.
    """
    low, high = 1 - clip_low, 1 + clip_high
    if preserve_gradient:
        unit = ratio / ratio.detach()
        clipped = torch.where(ratio < low, low * unit, torch.where(ratio > high, high * unit, ratio))
    else:
        clipped = ratio.clamp(low, high)
    loss = torch.maximum(-advantages * ratio, -advantages * clipped)
    negative = advantages < 0
    if dual_clip is None:
        dual_active = torch.zeros_like(valid)
    else:
        loss = torch.where(negative, torch.minimum(loss, -advantages * dual_clip), loss)
        dual_active = negative & (ratio.detach() > dual_clip)
    metrics = _metrics(
        ratio,
        token_log_ratio,
        valid,
        high_active=(advantages > 0) & (ratio.detach() > high),
        low_active=negative & (ratio.detach() < low),
        dual_active=dual_active,
    )
    return _masked(loss, valid), metrics


@POLICY_LOSSES.register("ppo")
def ppo_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    log_ratio_clamp: float = 20.0,
) -> PolicyLossOutput:
    """PPO clipped surrogate with asymmetric clip and dual clip, per token.

    r_t = exp(clamp(log π_θ − log π_old, ±log_ratio_clamp));
    L_t = max(−A_t r_t, −A_t clip(r_t, 1 − ε_l, 1 + ε_h)), and where A_t < 0 also L_t = min(L_t, −c·A_t).

    PPO: Schulman et al., arXiv 1707.06347. Clip-higher (ε_h > ε_l, DAPO ε_l = 0.2, ε_h = 0.28):
    Yu et al., arXiv 2503.14476. Dual clip (c, typically 3; bounds the loss of a negative-advantage token
    whose ratio exploded): Ye et al., arXiv 1912.09729. The log-ratio clamp (±20, as verl) only guards exp
    against overflow. Gradient per token: −A·r·∇log π where the unclipped branch is taken, 0 where a clip
    bound or the dual clip is active.
    """
    valid, log_ratio, advantages = _prologue(
        logprobs, old_logprobs, advantages, mask, clip_low, clip_high, dual_clip, log_ratio_clamp
    )
    token_log_ratio = log_ratio.clamp(-log_ratio_clamp, log_ratio_clamp)
    return _clipped_surrogate(
        torch.exp(token_log_ratio),
        token_log_ratio,
        advantages,
        valid,
        clip_low=clip_low,
        clip_high=clip_high,
        dual_clip=dual_clip,
        preserve_gradient=False,
    )


@POLICY_LOSSES.register("gppo")
def gppo_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    log_ratio_clamp: float = 20.0,
) -> PolicyLossOutput:
    """GPPO, gradient-preserving clipping (Klear-Reasoner, Su et al., arXiv 2508.07629).

    L_t = max(−A r, −A·clip(r, (1−ε_l)·r/sg(r), (1+ε_h)·r/sg(r))), dual clip as in `ppo`.
    Forward values equal `ppo`'s. Gradient per token (g = ∇log π):
    clip-high active (A > 0, r > 1+ε_h): −(1+ε_h)·A·g; clip-low active (A < 0, r < 1−ε_l): −(1−ε_l)·A·g;
    otherwise −r·A·g, except 0 where the dual clip is active (its bound −c·A is a constant, as in the
    reference code). Klear-Reasoner uses ε_l = 0.2, ε_h = 0.28, c = 3.
    """
    valid, log_ratio, advantages = _prologue(
        logprobs, old_logprobs, advantages, mask, clip_low, clip_high, dual_clip, log_ratio_clamp
    )
    token_log_ratio = log_ratio.clamp(-log_ratio_clamp, log_ratio_clamp)
    return _clipped_surrogate(
        torch.exp(token_log_ratio),
        token_log_ratio,
        advantages,
        valid,
        clip_low=clip_low,
        clip_high=clip_high,
        dual_clip=dual_clip,
        preserve_gradient=True,
    )


def _sequence_log_ratio(log_ratio: Tensor, valid: Tensor) -> Tensor:
    """mean_t log r_t over each response's real tokens, [B, 1] (0 for an empty response)."""
    return log_ratio.sum(dim=-1, keepdim=True) / valid.sum(dim=-1, keepdim=True).clamp_min(1)


@POLICY_LOSSES.register("gspo")
def gspo_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    log_ratio_clamp: float = 20.0,
) -> PolicyLossOutput:
    """GSPO, sequence-level ratio (Zheng et al., Qwen, arXiv 2507.18071).

    s_i = exp(clamp(mean_t (log π_θ − log π_old), ±log_ratio_clamp)), the length-normalised geometric mean
    of the token ratios; L_{i,t} = max(−A_{i,t} s_i, −A_{i,t} clip(s_i, 1 − ε_l, 1 + ε_h)) (dual clip as in
    `ppo`), the same value on every real token of response i. With seq-mean-token-mean aggregation this is
    the paper's objective. The paper uses ε_l = 3e-4, ε_h = 4e-4; verl clamps the log-ratio at 10.
    On one-token responses s_i = r_i and this is exactly `ppo`.
    """
    valid, log_ratio, advantages = _prologue(
        logprobs, old_logprobs, advantages, mask, clip_low, clip_high, dual_clip, log_ratio_clamp
    )
    token_log_ratio = log_ratio.clamp(-log_ratio_clamp, log_ratio_clamp)
    sequence_log_ratio = _sequence_log_ratio(log_ratio, valid).clamp(-log_ratio_clamp, log_ratio_clamp)
    return _clipped_surrogate(
        torch.exp(sequence_log_ratio).expand_as(log_ratio),
        token_log_ratio,
        advantages,
        valid,
        clip_low=clip_low,
        clip_high=clip_high,
        dual_clip=dual_clip,
        preserve_gradient=False,
    )


@POLICY_LOSSES.register("gspo_token")
def gspo_token_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    log_ratio_clamp: float = 20.0,
) -> PolicyLossOutput:
    """GSPO-token (Zheng et al., arXiv 2507.18071, eq. for token-level advantages).

    s_{i,t} = sg(s_i) · π_θ(y_t)/sg(π_θ(y_t)), computed as
    exp(clamp(sg(mean_t log r_t) + log π_θ(y_t) − sg(log π_θ(y_t)), ±log_ratio_clamp));
    L_{i,t} = max(−A_{i,t} s_{i,t}, −A_{i,t} clip(s_{i,t}, 1 − ε_l, 1 + ε_h)), dual clip as in `ppo`.
    Its value is s_i; its gradient at token t is s_i·∇log π(y_t) alone. When A is constant over each
    response, values and gradients equal `gspo`'s under any aggregation; it differs when A varies per token.
    """
    valid, log_ratio, advantages = _prologue(
        logprobs, old_logprobs, advantages, mask, clip_low, clip_high, dual_clip, log_ratio_clamp
    )
    token_log_ratio = log_ratio.clamp(-log_ratio_clamp, log_ratio_clamp)
    current = _masked(logprobs, valid)
    combined = _sequence_log_ratio(log_ratio, valid).detach() + current - current.detach()
    return _clipped_surrogate(
        torch.exp(combined.clamp(-log_ratio_clamp, log_ratio_clamp)),
        token_log_ratio,
        advantages,
        valid,
        clip_low=clip_low,
        clip_high=clip_high,
        dual_clip=dual_clip,
        preserve_gradient=False,
    )


@POLICY_LOSSES.register("cispo")
def cispo_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    log_ratio_clamp: float = 20.0,
) -> PolicyLossOutput:
    """CISPO, clipped IS-weight policy optimisation (MiniMax-M1, arXiv 2506.13585).

    L_t = −sg(clip(r_t, 1 − ε_l, 1 + ε_h)) · A_t · log π_θ(y_t): every token keeps a REINFORCE gradient
    −clip(r)·A·∇log π, with the importance weight truncated instead of the token dropped. The paper
    effectively disables the lower bound (set clip_low close to 1). There is no dual clip (the weight is
    already bounded), so it takes no `dual_clip`. clip_frac_high / clip_frac_low count tokens whose weight was
    truncated at the upper / lower bound, whatever the advantage's sign.
    """
    valid, log_ratio, advantages = _prologue(
        logprobs, old_logprobs, advantages, mask, clip_low, clip_high, None, log_ratio_clamp
    )
    token_log_ratio = log_ratio.clamp(-log_ratio_clamp, log_ratio_clamp)
    ratio = torch.exp(token_log_ratio).detach()
    low, high = 1 - clip_low, 1 + clip_high
    loss = -advantages * ratio.clamp(low, high) * _masked(logprobs, valid)
    metrics = _metrics(
        ratio,
        token_log_ratio,
        valid,
        high_active=ratio > high,
        low_active=ratio < low,
        dual_active=torch.zeros_like(valid),
    )
    return _masked(loss, valid), metrics


def policy_loss(
    name: str,
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    behaviour_logprobs: Tensor | None = None,
    correction: str = "none",
    **options: Any,
) -> PolicyLossOutput:
    """The registered loss `name`, weighted per token by the behaviour correction: L_t ← w_t · L_t.

    w_t = f(π_old/π_behaviour) detached, as `corrections.behaviour_weights` defines it for the registered
    `correction`; old_logprobs is the proximal policy the loss clips against. Each of `options` goes to
    whichever of the two declares it (e.g. clip_high to the loss, tis_cap to `tis`); one that neither
    declares is an error. Metrics are the loss's and the correction's together. This is the one call a
    trainer makes.
    """
    loss_options: dict[str, Any] = {}
    correction_options: dict[str, Any] = {}
    for key, value in options.items():
        if POLICY_LOSSES.accepts(name, key):
            loss_options[key] = value
        elif CORRECTIONS.accepts(correction, key):
            correction_options[key] = value
        else:
            raise ValueError(
                f"option {key!r} is declared neither by policy loss {name!r} nor by correction {correction!r}"
            )
    loss, metrics = POLICY_LOSSES.get(name)(logprobs, old_logprobs, advantages, mask, **loss_options)
    weights, correction_metrics = behaviour_weights(
        old_logprobs, behaviour_logprobs, mask, correction=correction, **correction_options
    )
    return loss * weights, {**metrics, **correction_metrics}
