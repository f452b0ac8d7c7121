"""The policy-loss family: hand-computed values, gradients (autograd) and the identities between variants."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from reasonrl.algorithms import CORRECTIONS, POLICY_LOSSES, aggregate_loss, policy_loss, token_logprobs

close = partial(torch.testing.assert_close, rtol=1e-10, atol=1e-12)
F64 = torch.float64
LN = math.log

# 2 x 3 example hitting every PPO branch with clip_low 0.2, clip_high 0.28, dual clip 3:
#   row 0, A = +1: r = 1.0 (inside), 1.5 (clip-high active), 0.5 (A > 0 below the band: unclipped branch)
#   row 1, A = -1: r = 0.5 (clip-low active), 2.0 (A < 0 above the band: unclipped), 4.0 (dual clip active)
RATIOS = torch.tensor([[1.0, 1.5, 0.5], [0.5, 2.0, 4.0]], dtype=F64)
ADV = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]], dtype=F64)
OLD = torch.full((2, 3), -2.0, dtype=F64)
MASK = torch.ones(2, 3, dtype=torch.bool)
KNOBS = {"clip_low": 0.2, "clip_high": 0.28, "dual_clip": 3.0}


def evaluate(name: str, ratios: torch.Tensor = RATIOS, adv: torch.Tensor = ADV, mask: torch.Tensor = MASK, **knobs):
    """(per-token loss, d Σ loss / d logprobs, metrics) with logprobs = old + log r."""
    old = torch.full_like(ratios, -2.0)
    logprobs = (old + ratios.log()).requires_grad_(True)
    loss, metrics = POLICY_LOSSES.get(name)(logprobs, old, adv, mask, **knobs)
    loss.sum().backward()
    return loss.detach(), logprobs.grad, metrics


def test_ppo_every_branch() -> None:
    loss, grad, metrics = evaluate("ppo", **KNOBS)
    # L = max(-A r, -A clip(r, 0.8, 1.28)); for A < 0 then min(L, -3 A)
    # row 0: max(-1, -1) = -1; max(-1.5, -1.28) = -1.28; max(-0.5, -0.8) = -0.5
    # row 1: max(0.5, 0.8) = 0.8; max(2.0, 1.28) = 2.0; min(max(4, 1.28), 3) = 3
    close(loss, torch.tensor([[-1.0, -1.28, -0.5], [0.8, 2.0, 3.0]], dtype=F64))
    # gradient -A r on the unclipped branch, 0 where a clip bound or the dual clip is active
    close(grad, torch.tensor([[-1.0, 0.0, -0.5], [0.0, 2.0, 0.0]], dtype=F64))
    close(metrics["clip_frac_high"], torch.tensor(1 / 6, dtype=F64))
    close(metrics["clip_frac_low"], torch.tensor(1 / 6, dtype=F64))
    close(metrics["dual_clip_frac"], torch.tensor(1 / 6, dtype=F64))
    close(metrics["ratio_mean"], torch.tensor((1 + 1.5 + 0.5 + 0.5 + 2 + 4) / 6, dtype=F64))
    close(metrics["ratio_max"], torch.tensor(4.0, dtype=F64))
    # k3 per token: (r - 1) - ln r
    k3 = [0.0, 0.5 - LN(1.5), -0.5 + LN(2), -0.5 + LN(2), 1 - LN(2), 3 - LN(4)]
    close(metrics["approx_kl"], torch.tensor(sum(k3) / 6, dtype=F64))


def test_ppo_without_dual_clip_keeps_the_unclipped_negative_branch() -> None:
    loss, grad, metrics = evaluate("ppo", clip_low=0.2, clip_high=0.28)
    close(loss[1, 2], torch.tensor(4.0, dtype=F64))  # max(4, 1.28)
    close(grad[1, 2], torch.tensor(4.0, dtype=F64))  # -A r
    close(metrics["dual_clip_frac"], torch.tensor(0.0, dtype=F64))


def test_symmetric_clip_defaults() -> None:
    # clip 0.2 both sides: r = 1.5 with A > 0 gives -1.2
    loss, _, _ = evaluate("ppo")
    close(loss[0, 1], torch.tensor(-1.2, dtype=F64))


def test_gppo_values_equal_ppo_and_clipped_tokens_keep_a_bounded_gradient() -> None:
    loss, grad, metrics = evaluate("gppo", **KNOBS)
    ppo_loss, _, ppo_metrics = evaluate("ppo", **KNOBS)
    close(loss, ppo_loss)
    assert metrics.keys() == ppo_metrics.keys()
    # clip-high active: -(1.28) A; clip-low active: -(0.8) A; unclipped: -r A; dual clip: constant -> 0
    close(grad, torch.tensor([[-1.0, -1.28, -0.5], [0.8, 2.0, 0.0]], dtype=F64))


def test_cispo_values_gradient_and_metrics() -> None:
    loss, grad, metrics = evaluate("cispo", clip_low=0.2, clip_high=0.28)
    # L = -A sg(clip(r, 0.8, 1.28)) log pi with log pi = -2 + ln r
    expected = [
        [2.0, 1.28 * (2 - LN(1.5)), 0.8 * (2 + LN(2))],  # A = +1: -w (-2 + ln r)
        [-0.8 * (2 + LN(2)), -1.28 * (2 - LN(2)), -1.28 * (2 - LN(4))],  # A = -1: w (-2 + ln r)
    ]
    close(loss, torch.tensor(expected, dtype=F64))
    # gradient -A clip(r) everywhere
    close(grad, torch.tensor([[-1.0, -1.28, -0.8], [0.8, 1.28, 1.28]], dtype=F64))
    close(metrics["clip_frac_high"], torch.tensor(3 / 6, dtype=F64))  # r in {1.5, 2, 4} above 1.28
    close(metrics["clip_frac_low"], torch.tensor(2 / 6, dtype=F64))  # r = 0.5 twice below 0.8
    assert not POLICY_LOSSES.accepts("cispo", "dual_clip")  # its weight is bounded already: no dual clip
    with pytest.raises(ValueError, match="'dual_clip' is declared neither by policy loss 'cispo'"):
        policy_loss("cispo", OLD, OLD, ADV, MASK, **KNOBS)


def test_gppo_and_cispo_gradients_agree_except_where_ppo_keeps_the_unclipped_branch_outside_the_band() -> None:
    # Both give -clip(r) A on tokens where a PPO clip bound is active and -r A inside [1 - eps_l, 1 + eps_h].
    # They differ exactly on tokens outside the band where PPO's pessimistic max keeps the unclipped branch
    # (A > 0 with r < 1 - eps_l, A < 0 with r > 1 + eps_h): GPPO gives -r A, CISPO -clip(r) A.
    knobs = {"clip_low": 0.2, "clip_high": 0.28}
    _, gppo, _ = evaluate("gppo", **knobs)
    _, cispo, _ = evaluate("cispo", **knobs)
    unclipped_outside = ((ADV > 0) & (RATIOS < 0.8)) | ((ADV < 0) & (RATIOS > 1.28))
    close(unclipped_outside, torch.tensor([[False, False, True], [False, True, True]]))
    close(gppo[~unclipped_outside], cispo[~unclipped_outside])
    close(gppo[unclipped_outside], (-ADV * RATIOS)[unclipped_outside])  # -0.5, 2.0, 4.0
    close(cispo[unclipped_outside], (-ADV * RATIOS.clamp(0.8, 1.28))[unclipped_outside])  # -0.8, 1.28, 1.28


# GSPO: three responses, lengths 3, 2, 2 (T = 3), token log-ratios chosen so the means are round.
GSPO_LOG_RATIOS = torch.tensor([[0.2, -0.1, 0.5], [0.6, 0.4, 7.0], [0.3, 0.5, -9.0]], dtype=F64)
GSPO_MASK = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 0]], dtype=torch.bool)
GSPO_ADV = torch.tensor([[1.0] * 3, [-1.0] * 3, [1.0] * 3], dtype=F64)


def test_gspo_sequence_ratio_values_gradient_and_metrics() -> None:
    # s = exp(mean log r): row 0 exp(0.6/3) = e^0.2 (A > 0, inside: loss -e^0.2)
    # row 1 exp(1.0/2) = e^0.5 = 1.6487 (A < 0, above the band: unclipped, loss e^0.5)
    # row 2 exp(0.8/2) = e^0.4 = 1.4918 (A > 0, above 1.28: clipped, loss -1.28, no gradient)
    loss, grad, metrics = evaluate("gspo", GSPO_LOG_RATIOS.exp(), GSPO_ADV, GSPO_MASK, clip_low=0.2, clip_high=0.28)
    e2, e5, e4 = math.exp(0.2), math.exp(0.5), math.exp(0.4)
    close(loss, torch.tensor([[-e2, -e2, -e2], [e5, e5, 0.0], [-1.28, -1.28, 0.0]], dtype=F64))
    # d Σ_t' L / d log pi_t = |y| * (-A s) * (1/|y|) = -A s on every real token
    close(grad, torch.tensor([[-e2, -e2, -e2], [e5, e5, 0.0], [0.0, 0.0, 0.0]], dtype=F64))
    close(metrics["clip_frac_high"], torch.tensor(2 / 7, dtype=F64))  # row 2's two tokens of 7
    close(metrics["ratio_mean"], torch.tensor((3 * e2 + 2 * e5 + 2 * e4) / 7, dtype=F64))
    close(metrics["ratio_max"], torch.tensor(e5, dtype=F64))
    # seq-mean-token-mean gives the paper's objective: mean over responses of the sequence loss
    close(aggregate_loss(loss, GSPO_MASK, "seq-mean-token-mean"), torch.tensor((-e2 + e5 - 1.28) / 3, dtype=F64))


def test_gspo_token_equals_gspo_when_the_advantage_is_constant_per_response() -> None:
    args = (GSPO_LOG_RATIOS.exp(), GSPO_ADV, GSPO_MASK)
    loss, grad, metrics = evaluate("gspo_token", *args, **KNOBS)
    gspo_loss, gspo_grad, gspo_metrics = evaluate("gspo", *args, **KNOBS)
    close(loss, gspo_loss)
    close(grad, gspo_grad)
    close(metrics, gspo_metrics)


def test_gspo_token_uses_each_tokens_own_advantage() -> None:
    # row 0 only, s = e^0.2 inside the band, A = [1, 2, 3]:
    # gspo_token: d L_t / d log pi_t = -A_t s -> [-s, -2s, -3s]
    # gspo: every token's gradient is -(Σ_t A_t) s / |y| = -(6/3) s = -2s
    ratios, mask = GSPO_LOG_RATIOS[:1].exp(), GSPO_MASK[:1]
    adv = torch.tensor([[1.0, 2.0, 3.0]], dtype=F64)
    s = math.exp(0.2)
    _, token_grad, _ = evaluate("gspo_token", ratios, adv, mask, **KNOBS)
    _, seq_grad, _ = evaluate("gspo", ratios, adv, mask, **KNOBS)
    close(token_grad, torch.tensor([[-s, -2 * s, -3 * s]], dtype=F64))
    close(seq_grad, torch.tensor([[-2 * s, -2 * s, -2 * s]], dtype=F64))


@pytest.mark.parametrize("name", ["gspo", "gspo_token"])
def test_gspo_on_one_token_responses_is_token_level_ppo(name: str) -> None:
    # The six tokens of the PPO example as six one-token responses; the second column is padding.
    ratios = torch.stack([RATIOS.reshape(-1), torch.full((6,), 50.0, dtype=F64)], dim=1)
    adv = torch.stack([ADV.reshape(-1), torch.full((6,), 7.0, dtype=F64)], dim=1)
    mask = torch.tensor([[True, False]] * 6)
    got = evaluate(name, ratios, adv, mask, **KNOBS)
    ppo = evaluate("ppo", ratios, adv, mask, **KNOBS)
    for a, b in zip(got, ppo, strict=True):
        close(a, b)
    close(got[0][:, 0], torch.tensor([-1.0, -1.28, -0.5, 0.8, 2.0, 3.0], dtype=F64))


def test_gspo_clamps_the_sequence_log_ratio() -> None:
    # mean log r = 12 > 10: s = e^10, and the clamp stops the gradient
    ratios = torch.tensor([[math.exp(12.0)]], dtype=F64)
    adv = torch.tensor([[-1.0]], dtype=F64)
    loss, grad, _ = evaluate("gspo", ratios, adv, torch.ones(1, 1, dtype=torch.bool), log_ratio_clamp=10.0)
    close(loss, torch.tensor([[math.exp(10.0)]], dtype=F64))
    close(grad, torch.zeros(1, 1, dtype=F64))


@pytest.mark.parametrize("name", POLICY_LOSSES.names())
def test_padding_never_leaks(name: str) -> None:
    # Padding holds inf / nan log-probs and advantages; loss, gradient and metrics stay finite and zero there.
    old = torch.tensor([[-1.0, -2.0, math.nan], [-1.5, math.inf, -math.inf]], dtype=F64)
    logprobs = torch.tensor([[-1.2, -1.8, -math.inf], [-1.5, math.nan, 3.0]], dtype=F64).requires_grad_(True)
    adv = torch.tensor([[1.0, 1.0, math.inf], [-0.5, math.nan, 2.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    loss, metrics = POLICY_LOSSES.get(name)(logprobs, old, adv, mask)
    loss.sum().backward()
    assert torch.all(loss[~mask] == 0) and torch.all(logprobs.grad[~mask] == 0)
    assert torch.isfinite(loss).all() and torch.isfinite(logprobs.grad).all()
    assert all(torch.isfinite(value) for value in metrics.values())


# With identical behaviour, old and new log-probs every variant is the plain policy gradient -A ∇log π.
# A tiny "policy": logits θ [B, T, V] are the parameters; log π comes from token_logprobs.
def _plain_policy_gradient_setup() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 5, generator=generator, dtype=F64)
    tokens = torch.randint(0, 5, (3, 4), generator=generator)
    adv = torch.tensor([[1.5] * 4, [-0.5] * 4, [0.0] * 4], dtype=F64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    return logits, tokens, adv, mask


@pytest.mark.parametrize("correction", CORRECTIONS.names())
@pytest.mark.parametrize("name", POLICY_LOSSES.names())
def test_on_policy_every_variant_is_the_plain_policy_gradient(name: str, correction: str) -> None:
    logits, tokens, adv, mask = _plain_policy_gradient_setup()
    theta = logits.clone().requires_grad_(True)
    logprobs = token_logprobs(theta, tokens).to(F64)
    old = logprobs.detach()
    knobs = {"clip_low": 0.2, "clip_high": 0.28} | ({} if name == "cispo" else {"dual_clip": 3.0})
    behaviour = old.clone()
    loss, _ = policy_loss(name, logprobs, old, adv, mask, behaviour_logprobs=behaviour, correction=correction, **knobs)
    aggregate_loss(loss, mask, "seq-mean-token-mean").backward()

    reference = logits.clone().requires_grad_(True)
    plain = -adv * token_logprobs(reference, tokens).to(F64)
    aggregate_loss(plain, mask, "seq-mean-token-mean").backward()
    close(theta.grad, reference.grad)


def test_ppo_gradient_equals_plain_policy_gradient_for_every_aggregation() -> None:
    logits, tokens, adv, mask = _plain_policy_gradient_setup()
    for mode in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"):
        theta = logits.clone().requires_grad_(True)
        logprobs = token_logprobs(theta, tokens).to(F64)
        loss, metrics = policy_loss("ppo", logprobs, logprobs.detach(), adv, mask, **KNOBS)
        aggregate_loss(loss, mask, mode).backward()
        reference = logits.clone().requires_grad_(True)
        aggregate_loss(-adv * token_logprobs(reference, tokens).to(F64), mask, mode).backward()
        close(theta.grad, reference.grad)
        close(metrics["ratio_mean"], torch.tensor(1.0, dtype=F64))
        close(metrics["approx_kl"], torch.tensor(0.0, dtype=F64))


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"clip_low": 1.0}, "clip_low must be in"),
        ({"clip_high": -0.1}, "clip_high must be"),
        ({"dual_clip": 1.0}, "dual_clip must be > 1"),
        ({"log_ratio_clamp": 0.0}, "log_ratio_clamp must be positive"),
    ],
)
def test_bad_knobs_are_named(knobs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        POLICY_LOSSES.get("ppo")(OLD, OLD, ADV, MASK, **knobs)


def test_shape_mismatch_is_named() -> None:
    with pytest.raises(ValueError, match="advantages has shape"):
        POLICY_LOSSES.get("ppo")(OLD, OLD, ADV[:, :2], MASK)
    with pytest.raises(ValueError, match="logprobs must have shape"):
        POLICY_LOSSES.get("ppo")(OLD[0], OLD[0], ADV[0], MASK[0])
