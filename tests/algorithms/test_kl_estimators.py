"""Schulman's k1/k2/k3 KL estimators: values, gradients and verl's k3 clamp."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from reasonrl.algorithms import KL_ESTIMATORS

close = partial(torch.testing.assert_close, rtol=1e-10, atol=1e-12)
F64 = torch.float64
LN2 = math.log(2)

# log ρ = ln π_ref − ln π. Token 0: π = 0.5, π_ref = 0.25 (log ρ = −ln 2); token 1: π = 0.25, π_ref = 0.5
# (log ρ = ln 2); token 2: π = π_ref (every estimator is 0).
LOGPROBS = torch.tensor([[math.log(0.5), math.log(0.25), math.log(0.3)]], dtype=F64)
REF = torch.tensor([[math.log(0.25), math.log(0.5), math.log(0.3)]], dtype=F64)


@pytest.mark.parametrize(
    ("name", "expected", "gradient"),
    [
        # k1 = −log ρ; d/d log π = 1
        ("k1", [LN2, -LN2, 0.0], [1.0, 1.0, 1.0]),
        # k2 = ½ (log ρ)² = ½ ln²2; d/d log π = −log ρ
        ("k2", [0.5 * LN2**2, 0.5 * LN2**2, 0.0], [LN2, -LN2, 0.0]),
        # k3 = (ρ − 1) − log ρ: (0.5 − 1) + ln 2 and (2 − 1) − ln 2; d/d log π = 1 − ρ
        ("k3", [LN2 - 0.5, 1 - LN2, 0.0], [0.5, -1.0, 0.0]),
    ],
)
def test_values_and_gradients(name: str, expected: list[float], gradient: list[float]) -> None:
    logprobs = LOGPROBS.clone().requires_grad_(True)
    kl = KL_ESTIMATORS.get(name)(logprobs, REF)
    close(kl, torch.tensor([expected], dtype=F64))
    kl.sum().backward()
    close(logprobs.grad, torch.tensor([gradient], dtype=F64))


def test_k3_is_clamped_like_verl() -> None:
    # log ρ = 30 is clamped to 20 and e^20 − 1 − 20 to 10; log ρ = −30 → −20 → e^−20 − 1 + 20 ≈ 19 → 10.
    logprobs = torch.tensor([[0.0, 0.0]], dtype=F64, requires_grad=True)
    ref = torch.tensor([[30.0, -30.0]], dtype=F64)
    kl = KL_ESTIMATORS.get("k3")(logprobs, ref)
    close(kl, torch.tensor([[10.0, 10.0]], dtype=F64))
    kl.sum().backward()
    close(logprobs.grad, torch.zeros(1, 2, dtype=F64))  # a clamped token contributes no gradient


def test_k3_is_accurate_near_zero() -> None:
    # float32, log ρ = x = 1e-3: k3 = e^x − 1 − x = x²/2 + x³/6 + ... (exp(x) − 1 − x would be ~10% off)
    kl = KL_ESTIMATORS.get("k3")(torch.zeros(1, 1), torch.full((1, 1), 1e-3))
    torch.testing.assert_close(kl, torch.full((1, 1), 1e-6 / 2 + 1e-9 / 6), rtol=1e-4, atol=0)


def test_shape_mismatch_is_named() -> None:
    for name in KL_ESTIMATORS.names():
        with pytest.raises(ValueError, match="differ in shape"):
            KL_ESTIMATORS.get(name)(LOGPROBS, REF[:, :2])
