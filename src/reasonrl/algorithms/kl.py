"""Per-token KL estimators between the policy and the reference model (Schulman, "Approximating KL
Divergence", http://joschu.net/blog/kl-approx.html).

Tokens are sampled from the policy π; with log ρ = log π_ref(y_t) − log π(y_t) each estimator below has
expectation KL(π ‖ π_ref) (k2 only approximately). All take `(logprobs, ref_logprobs)` [B, T] and return
[B, T]; padding is left to the caller (aggregate with the mask, or pass the values as `kl_penalty` to an
advantage estimator, which zeroes padding). Registered in `KL_ESTIMATORS` under "k1", "k2", "k3".

Use as a loss term: aggregate it and add coef · KL to the loss. Its gradient then differs by estimator —
the k2 loss's gradient, (log π − log π_ref)·∇log π, is the one whose expectation is ∇KL(π ‖ π_ref); the k3
loss's, (1 − π_ref/π)·∇log π, is in expectation ∇KL(π_ref ‖ π). Use as a reward penalty: pass
`coef · estimator(...).detach()` as `AdvantageInputs.kl_penalty`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from reasonrl.plugins import Registry

KLEstimator = Callable[[Tensor, Tensor], Tensor]
KL_ESTIMATORS: Registry[KLEstimator] = Registry(
    "KL estimator", call="fn(logprobs [B, T], ref_logprobs [B, T], *, <options>) -> per-token KL [B, T]"
)

K3_LOG_RATIO_BOUND = 20.0
"""k3 clamps log ρ to ±20 before exp, so exp(log ρ) cannot overflow (as verl's `kl_penalty`)."""
K3_BOUND = 10.0
"""k3 clamps its value to [−10, 10] as verl does; k3 ≥ 0, so only the upper bound binds, and a token whose
k3 exceeds 10 contributes 10 and no gradient."""


def _check(logprobs: Tensor, ref_logprobs: Tensor) -> None:
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)} and ref_logprobs {tuple(ref_logprobs.shape)} differ in shape"
        )


@KL_ESTIMATORS.register("k1")
def kl_k1(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """k1 = −log ρ = log π − log π_ref: unbiased, high variance, can be negative per token."""
    _check(logprobs, ref_logprobs)
    return logprobs - ref_logprobs


@KL_ESTIMATORS.register("k2")
def kl_k2(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """k2 = ½ (log ρ)²: non-negative, low variance, biased (exact to second order in log ρ)."""
    _check(logprobs, ref_logprobs)
    return 0.5 * (ref_logprobs - logprobs) ** 2


@KL_ESTIMATORS.register("k3")
def kl_k3(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """k3 = (ρ − 1) − log ρ: unbiased and non-negative (the GRPO paper's KL, arXiv 2402.03300).

    Computed as expm1(log ρ) − log ρ (no cancellation when ρ ≈ 1) and clamped for stability like verl:
    log ρ to ±`K3_LOG_RATIO_BOUND` (20), the value to ±`K3_BOUND` (10).
    """
    _check(logprobs, ref_logprobs)
    log_ratio = (ref_logprobs - logprobs).clamp(-K3_LOG_RATIO_BOUND, K3_LOG_RATIO_BOUND)
    return (torch.expm1(log_ratio) - log_ratio).clamp(-K3_BOUND, K3_BOUND)
