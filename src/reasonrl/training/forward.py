"""One forward pass over a micro-batch: response-token log-probs (and entropies) under a model."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from reasonrl.algorithms import entropy_from_logits, token_logprobs
from reasonrl.training.batch import Batch, model_inputs, response_logits
from reasonrl.training.parallel import SINGLE, DataParallel, padding_part


def forward_responses(
    model: PreTrainedModel, batch: Batch, pad_id: int, *, with_entropy: bool = False, entropy_grad: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """([B, T] log-probs of the response tokens, [B, T] entropies or None), zero on padding.

    Log-probs follow the library's single definition: softmax of the raw logits at temperature 1. The
    entropy carries a gradient only with `entropy_grad` (an entropy bonus); as a metric it costs no graph.
    """
    device = next(model.parameters()).device
    inputs = model_inputs(batch, pad_id).to(device)
    logits = model(
        input_ids=inputs.input_ids,
        attention_mask=inputs.attention_mask,
        use_cache=False,
        logits_to_keep=inputs.logits_to_keep,
    ).logits
    logits = response_logits(logits, inputs.response_positions)
    targets = torch.zeros(batch.response_mask.shape, dtype=torch.long)
    for row, ids in enumerate(batch.response_ids):
        targets[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    mask = batch.response_mask.to(device)
    logprobs = token_logprobs(logits, targets.to(device)) * mask
    entropy = None
    if with_entropy:
        entropy = entropy_from_logits(logits if entropy_grad else logits.detach()) * mask
    return logprobs, entropy


@torch.no_grad()
def score_responses(
    model: PreTrainedModel,
    batch: Batch,
    pad_id: int,
    token_budget: int,
    *,
    with_entropy: bool = False,
    parallel: DataParallel = SINGLE,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`forward_responses` over the whole batch in length-bucketed micro-batches, without gradients; with
    several learner ranks each scores its own rows (`parallel.micro_plan`) and every rank gets the whole."""
    logprobs = torch.zeros_like(batch.response_mask)
    entropy = torch.zeros_like(batch.response_mask) if with_entropy else None
    was_training = model.training
    model.eval()
    try:
        for rows in parallel.micro_plan(batch, token_budget):
            part = batch.select(rows) if rows is not None else padding_part(batch)
            lp, ent = forward_responses(model, part, pad_id, with_entropy=with_entropy)
            if rows is None:
                continue
            width = part.response_mask.shape[1]
            index = torch.tensor(rows)
            logprobs[index, :width] = lp.float().cpu()
            if entropy is not None and ent is not None:
                entropy[index, :width] = ent.float().cpu()
    finally:
        model.train(was_training)
    return parallel.gather_rows(logprobs), None if entropy is None else parallel.gather_rows(entropy)
