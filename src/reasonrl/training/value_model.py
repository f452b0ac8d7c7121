"""The critic's network: a transformer without its LM head, and a linear value head on the last hidden states."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel

from reasonrl.config.schema import ModelConfig
from reasonrl.training.batch import Batch, model_inputs
from reasonrl.training.models import loading_options
from reasonrl.training.parallel import SINGLE, DataParallel, padding_part


class ValueModel(nn.Module):
    """V(s) for every prefix of a sequence: `forward` returns [B, L] float32 values, one per position.

    The head starts at zero, so the first values are 0 and the first GAE advantages are plain discounted
    returns; a randomly initialised head would instead feed noise into the first policy updates.
    """

    def __init__(self, backbone: PreTrainedModel) -> None:
        super().__init__()
        self.backbone = backbone
        hidden = backbone.config.get_text_config().hidden_size
        parameter = next(backbone.parameters())
        self.head = nn.Linear(hidden, 1, dtype=parameter.dtype, device=parameter.device)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        return self.head(hidden).squeeze(-1).float()


def load_value_model(folder: Path, config: ModelConfig, device: torch.device) -> ValueModel:
    """A value model whose backbone is the transformer saved in `folder` (a causal-LM folder works: its LM
    head is simply not loaded)."""
    backbone = AutoModel.from_pretrained(folder, **loading_options(config)).to(device)
    if config.gradient_checkpointing:
        backbone.gradient_checkpointing_enable()
    model = ValueModel(backbone)
    model.train()
    return model


def forward_values(model: ValueModel, batch: Batch, pad_id: int) -> torch.Tensor:
    """[B, T] values V(s_t) of the state before each response token (the prompt plus y_<t), zero on padding.

    s_t ends at the position whose logits predict y_t, so the values line up with the policy's log-probs.
    """
    device = next(model.parameters()).device
    inputs = model_inputs(batch, pad_id).to(device)
    values = model(inputs.input_ids, inputs.attention_mask)[:, -inputs.logits_to_keep :]
    return values.gather(1, inputs.response_positions) * batch.response_mask.to(device)


@torch.no_grad()
def score_values(
    model: nn.Module, batch: Batch, pad_id: int, token_budget: int, parallel: DataParallel = SINGLE
) -> torch.Tensor:
    """`forward_values` over the whole batch in length-bucketed micro-batches, without gradients, on the CPU;
    with several learner ranks each scores its own rows and every rank gets the whole."""
    values = torch.zeros_like(batch.response_mask)
    was_training = model.training
    model.eval()
    try:
        for rows in parallel.micro_plan(batch, token_budget):
            part = batch.select(rows) if rows is not None else padding_part(batch)
            scored = forward_values(model, part, pad_id).cpu()
            if rows is not None:
                values[torch.tensor(rows), : part.response_mask.shape[1]] = scored
    finally:
        model.train(was_training)
    return parallel.gather_rows(values)
