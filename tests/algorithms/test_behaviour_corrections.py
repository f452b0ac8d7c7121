"""Behaviour-policy corrections (decoupled, TIS, IcePop): weights, metrics and their gradients in the loss."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from reasonrl.algorithms import CORRECTIONS, behaviour_weights, policy_loss

close = partial(torch.testing.assert_close, rtol=1e-10, atol=1e-12)
F64 = torch.float64

# k = π_old / π_behaviour on five real tokens, plus a padding token with a wild behaviour log-prob.
K = [0.3, 1.0, 1.5, 2.5, 6.0]
OLD = torch.tensor([[-1.0] * 6], dtype=F64)
BEHAVIOUR = torch.tensor([[-1.0 - math.log(k) for k in K] + [50.0]], dtype=F64)
MASK = torch.tensor([[1, 1, 1, 1, 1, 0]], dtype=torch.bool)


def weights(correction: str, **knobs: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return behaviour_weights(OLD, BEHAVIOUR, MASK, correction=correction, **knobs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("correction", "expected"),
    [
        ("none", [1.0, 1.0, 1.0, 1.0, 1.0]),
        ("decoupled", K),  # w = k
        ("tis", [0.3, 1.0, 1.5, 2.0, 2.0]),  # w = min(k, 2)
        ("icepop", [0.0, 1.0, 1.5, 2.5, 0.0]),  # w = k inside [0.5, 5], 0 outside
    ],
)
def test_weights(correction: str, expected: list[float]) -> None:
    got, _ = weights(correction)
    close(got, torch.tensor([[*expected, 0.0]], dtype=F64))


def test_knobs_move_the_bounds() -> None:
    close(weights("tis", tis_cap=1.2)[0], torch.tensor([[0.3, 1.0, 1.2, 1.2, 1.2, 0.0]], dtype=F64))
    close(
        weights("icepop", icepop_low=0.2, icepop_high=2.0)[0],
        torch.tensor([[0.3, 1.0, 1.5, 0.0, 0.0, 0.0]], dtype=F64),
    )


def test_metrics() -> None:
    _, tis = weights("tis")
    _, icepop = weights("icepop")
    close(tis["behaviour_ratio_mean"], torch.tensor((0.3 + 1 + 1.5 + 2.5 + 6) / 5, dtype=F64))  # 2.26
    close(tis["behaviour_ratio_min"], torch.tensor(0.3, dtype=F64))
    close(tis["behaviour_ratio_max"], torch.tensor(6.0, dtype=F64))
    # Quantiles of k = [0.3, 1, 1.5, 2.5, 6], interpolated at positions 0.2, 2 and 3.8 of 0..4.
    close(tis["behaviour_ratio_p05"], torch.tensor(0.3 + 0.2 * 0.7, dtype=F64))  # 0.44
    close(tis["behaviour_ratio_p50"], torch.tensor(1.5, dtype=F64))
    close(tis["behaviour_ratio_p95"], torch.tensor(2.5 + 0.8 * 3.5, dtype=F64))  # 5.3
    close(tis["behaviour_weight_mean"], torch.tensor((0.3 + 1 + 1.5 + 2 + 2) / 5, dtype=F64))
    close(tis["behaviour_truncated_frac"], torch.tensor(2 / 5, dtype=F64))  # 2.5 and 6 above the cap
    assert "behaviour_masked_frac" not in tis and "behaviour_capped_frac" not in tis  # icepop's and decoupled's
    close(icepop["behaviour_masked_frac"], torch.tensor(2 / 5, dtype=F64))  # 0.3 and 6 outside the band
    close(icepop["behaviour_weight_mean"], torch.tensor((1 + 1.5 + 2.5) / 5, dtype=F64))
    # k3 estimate of KL(behaviour || old): mean of (k - 1) - ln k
    close(tis["behaviour_kl"], torch.tensor(sum(k - 1 - math.log(k) for k in K) / 5, dtype=F64))


def test_without_behaviour_logprobs_only_none_is_allowed() -> None:
    got, metrics = behaviour_weights(OLD, None, MASK)
    close(got, MASK.to(F64))
    assert metrics == {}
    for correction in ("decoupled", "tis", "icepop"):
        with pytest.raises(ValueError, match="needs the behaviour log-probs"):
            behaviour_weights(OLD, None, MASK, correction=correction)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"correction": "is"}, "unknown behaviour correction 'is'"),
        ({"correction": "tis", "tis_cap": 0.5}, "tis_cap must be >= 1"),
        ({"correction": "decoupled", "decoupled_cap": 1.0}, "decoupled_cap must be > 1"),
        (
            {"correction": "tis", "decoupled_cap": 3.0},
            r"correction 'tis' takes no 'decoupled_cap'; its options are \['tis_cap'\]",
        ),
        (
            {"correction": "none", "decoupled_cap": 3.0},
            "correction 'none' takes no 'decoupled_cap'; its options are none",
        ),
        ({"correction": "icepop", "icepop_low": 1.5}, "IcePop needs"),
        ({"correction": "icepop", "icepop_high": 0.9}, "IcePop needs"),
    ],
)
def test_bad_knobs_are_named(knobs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        behaviour_weights(OLD, BEHAVIOUR, MASK, **knobs)  # type: ignore[arg-type]


def loss_gradient(correction: str, name: str = "ppo", **knobs: float) -> torch.Tensor:
    """d Σ L / d logprobs for A = 1 with logprobs = old (ratio 1): -w_t on real tokens."""
    logprobs = OLD.clone().requires_grad_(True)
    adv = torch.ones_like(OLD)
    loss, _ = policy_loss(
        name,
        logprobs,
        OLD,
        adv,
        MASK,
        behaviour_logprobs=BEHAVIOUR,
        correction=correction,  # type: ignore[arg-type]
        **knobs,
    )
    loss.sum().backward()
    return logprobs.grad


@pytest.mark.parametrize(
    ("cap", "expected", "capped"),
    [
        (None, K, 0.0),  # no cap: plain w = k
        (2.0, [0.3, 1.0, 1.5, 0.0, 0.0], 2 / 5),  # 2.5 and 6 exceed the cap: masked, not truncated
        (5.0, [0.3, 1.0, 1.5, 2.5, 0.0], 1 / 5),  # only 6 exceeds it
        (10.0, K, 0.0),  # nothing exceeds it
    ],
)
def test_decoupled_cap_masks_tokens_whose_weight_exceeds_it(
    cap: float | None, expected: list[float], capped: float
) -> None:
    got, metrics = behaviour_weights(OLD, BEHAVIOUR, MASK, correction="decoupled", decoupled_cap=cap)
    close(got, torch.tensor([[*expected, 0.0]], dtype=F64))
    close(metrics.get("behaviour_capped_frac", torch.tensor(0.0, dtype=F64)), torch.tensor(capped, dtype=F64))
    assert ("behaviour_capped_frac" in metrics) == (cap is not None)  # an uncapped decoupled has nothing to report
    close(metrics["behaviour_weight_mean"], torch.tensor(sum(expected) / 5, dtype=F64))
    close(metrics["behaviour_ratio_max"], torch.tensor(6.0, dtype=F64))  # the ratio metrics still see every k


def test_decoupled_cap_catches_a_weight_at_the_log_ratio_clamp() -> None:
    # π_prox / π_behaviour = e^25 is clamped to e^20 first; a cap of 10 masks it, and keeps k = 1.
    got, metrics = behaviour_weights(
        torch.tensor([[0.0, -1.0]], dtype=F64),
        torch.tensor([[-25.0, -1.0]], dtype=F64),
        torch.ones(1, 2, dtype=torch.bool),
        correction="decoupled",
        decoupled_cap=10.0,
    )
    close(got, torch.tensor([[0.0, 1.0]], dtype=F64))
    close(metrics["behaviour_capped_frac"], torch.tensor(0.5, dtype=F64))
    close(metrics["behaviour_ratio_max"], torch.tensor(math.exp(20.0), dtype=F64))


def test_each_correction_reports_only_its_own_metric() -> None:
    own = {"none": set(), "tis": {"behaviour_truncated_frac"}, "icepop": {"behaviour_masked_frac"}}
    shared = set(weights("none")[1])
    for correction, expected in own.items():
        assert set(weights(correction)[1]) - shared == expected


def test_decoupled_cap_gives_zero_gradient_above_the_cap() -> None:
    grad = loss_gradient("decoupled", decoupled_cap=2.0)
    close(grad, torch.tensor([[-0.3, -1.0, -1.5, 0.0, 0.0, 0.0]], dtype=F64))
    assert grad[0, 3] == 0 and grad[0, 4] == 0  # k = 2.5 and 6 > 2: exactly zero


def test_icepop_gives_zero_gradient_outside_its_band() -> None:
    grad = loss_gradient("icepop")
    close(grad, torch.tensor([[0.0, -1.0, -1.5, -2.5, 0.0, 0.0]], dtype=F64))
    assert grad[0, 0] == 0 and grad[0, 4] == 0  # k = 0.3 < 0.5 and k = 6 > 5: exactly zero


@pytest.mark.parametrize("name", ["ppo", "gppo", "cispo", "gspo_token"])
def test_correction_weights_scale_the_gradient(name: str) -> None:
    close(loss_gradient("decoupled", name), torch.tensor([[-k for k in K] + [0.0]], dtype=F64))
    close(loss_gradient("tis", name), torch.tensor([[-0.3, -1.0, -1.5, -2.0, -2.0, 0.0]], dtype=F64))


def test_decoupled_clips_against_the_proximal_policy_and_weights_by_behaviour() -> None:
    # π_θ/π_prox = 1.5 with A = 1 is clipped at 1.28 (no gradient) whatever the behaviour policy;
    # π_θ/π_prox = 1.1 is inside the band: gradient -w r A = -(π_prox/π_behaviour) * 1.1.
    prox = torch.tensor([[-1.0, -1.0]], dtype=F64)
    behaviour = torch.tensor([[-1.0 - math.log(0.5), -1.0 - math.log(0.5)]], dtype=F64)  # k = 0.5
    logprobs = (prox + torch.tensor([[math.log(1.5), math.log(1.1)]], dtype=F64)).requires_grad_(True)
    mask = torch.ones(1, 2, dtype=torch.bool)
    loss, metrics = policy_loss(
        "ppo",
        logprobs,
        prox,
        torch.ones(1, 2, dtype=F64),
        mask,
        behaviour_logprobs=behaviour,
        correction="decoupled",
        clip_high=0.28,
    )
    loss.sum().backward()
    close(loss, torch.tensor([[-0.5 * 1.28, -0.5 * 1.1]], dtype=F64))
    close(logprobs.grad, torch.tensor([[0.0, -0.5 * 1.1]], dtype=F64))
    close(metrics["clip_frac_high"], torch.tensor(0.5, dtype=F64))
    close(metrics["behaviour_ratio_mean"], torch.tensor(0.5, dtype=F64))


def test_every_correction_is_neutral_when_behaviour_equals_old() -> None:
    for correction in CORRECTIONS:
        got, metrics = behaviour_weights(OLD, OLD.clone(), MASK, correction=correction)  # type: ignore[arg-type]
        close(got, MASK.to(F64))
        close(metrics["behaviour_kl"], torch.tensor(0.0, dtype=F64))
