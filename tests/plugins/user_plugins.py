"""A user's own file extending reasonrl: a policy loss, an advantage estimator, a verifier and a test-time
strategy, each in a few lines and selected by `path/to/this/file.py:name` (tests/plugins/test_user_plugins.py).
Nothing here is imported by reasonrl's own modules; the registries load it from the path."""

from __future__ import annotations

import torch


def reinforce_loss(logprobs, old_logprobs, advantages, mask, *, weight: float = 1.0):
    """Plain REINFORCE, -weight * A * log pi, logging its weight as `policy/reinforce_weight`."""
    loss = -weight * advantages * logprobs * mask
    return loss, {"reinforce_weight": torch.tensor(weight)}


def constant_advantage(inputs, *, value: float):
    """Every real token gets the advantage `value` (a user's estimator with a required option)."""
    return torch.where(inputs.valid(), torch.tensor(value), torch.tensor(0.0))


def half_credit(response, answer, meta=None, *, credit: float = 0.5):
    """1 for the right answer, `credit` for anything else."""
    return 1.0 if response.strip() == str(answer) else credit


def unanswered(classes, scores, *, fallback: int = 0):
    """A response without an answer when there is one (a perverse choice no built-in makes), else response
    `fallback` (reasonrl gives responses without an answer the class -1)."""
    return next((i for i, label in enumerate(classes) if label == -1), min(fallback, len(classes) - 1))
