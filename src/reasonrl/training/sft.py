"""Supervised fine-tuning before RL: teach the policy the answer format before RL, so RL starts from some right answers.

A policy that never answers correctly gets zero reward variance in every group and no GRPO signal; a short
supervised stage on (prompt, answer) pairs fixes that. Its optimizer is separate from the RL learner's, so
the RL run's optimizer state and schedule start clean.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import torch
from transformers import PreTrainedModel

from reasonrl.config.schema import SftConfig
from reasonrl.training.batch import Batch, micro_batches
from reasonrl.training.forward import forward_responses


def supervised_finetune(
    model: PreTrainedModel,
    prompt_ids: Sequence[list[int]],
    target_ids: Sequence[list[int]],
    config: SftConfig,
    *,
    pad_id: int,
    token_budget: int,
    seed: int,
    grad_clip: float = 1.0,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    target_masks: Sequence[Sequence[int]] | None = None,
) -> list[dict[str, float]]:
    """`config.steps` AdamW steps of token-mean cross-entropy on the targets; returns per-step metrics.
    `target_masks`: 1 on target tokens to learn, 0 on context inside them (a demonstration episode's tool
    results), which the mean leaves out."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    rng = random.Random(seed)
    history = []
    model.train()
    for step in range(1, config.steps + 1):
        rows = rng.sample(range(len(prompt_ids)), min(config.batch_size, len(prompt_ids)))
        masks = None if target_masks is None else [target_masks[r] for r in rows]
        batch = Batch.from_ids([prompt_ids[r] for r in rows], [target_ids[r] for r in rows], masks)
        total_tokens = batch.num_tokens
        optimizer.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for group in micro_batches(batch, token_budget):
            logprobs, _ = forward_responses(model, batch.select(group), pad_id)
            # Log-probs are zero off the mask; summed over micro-batches this is the token mean of the batch.
            loss = -logprobs.sum() / total_tokens
            loss.backward()
            loss_sum += loss.item()
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, grad_clip if grad_clip > 0 else math.inf)
        optimizer.step()
        metrics = {
            "sft/loss": loss_sum,
            "sft/grad_norm": float(grad_norm),
            "sft/token_accuracy_proxy": math.exp(-loss_sum),
        }
        history.append(metrics)
        if on_step is not None:
            on_step(step, metrics)
    return history
