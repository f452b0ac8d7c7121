"""One extra no-grad forward pass that returns the attention maps of a few probe layers.

Fast attention kernels (sdpa, flash) never materialise softmax(QK^T), and asking transformers for
`output_attentions` would switch every layer to eager attention. Instead, for this pass only, the probe
layers' attention modules get a config copy naming a registered attention function that runs the model's own
implementation for the output (so later layers see exactly what they always see) and computes the weights
softmax(QK^T·scale) with a causal mask beside it. Every other layer keeps its fast kernel. Sequences are
right-padded, so a real token's causal row never reaches padding and the plain causal mask is exact for it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from reasonrl.training.batch import Batch, model_inputs
from reasonrl.training.parallel import SINGLE, DataParallel, padding_part

PROBE = "reasonrl_attention_probe"
# Per probe pass: attention module -> (the implementation it normally uses, where its weights go).
_CAPTURES: ContextVar[dict[nn.Module, tuple[str, list[torch.Tensor]]]] = ContextVar("attention_captures")


def causal_attention_weights(query: torch.Tensor, key: torch.Tensor, scaling: float) -> torch.Tensor:
    """[B, heads, L, L] float32 softmax(Q K^T · scaling) under a causal mask; grouped key heads are repeated."""
    key = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
    scores = torch.matmul(query.float(), key.float().transpose(2, 3)) * scaling
    length = query.shape[2]
    future = torch.ones(length, length, dtype=torch.bool, device=query.device).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


def _probe_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    implementation, sink = _CAPTURES.get()[module]
    # The model's eager function is model-specific; sdpa accepts the same additive masks and is exact.
    fast = ALL_ATTENTION_FUNCTIONS["sdpa" if implementation in (None, "eager") else implementation]
    output, _ = fast(module, query, key, value, attention_mask, **kwargs)
    sink.append(causal_attention_weights(query, key, kwargs.get("scaling", query.shape[-1] ** -0.5)).cpu())
    return output, None


AttentionInterface.register(PROBE, _probe_attention)


def attention_modules(model: PreTrainedModel) -> dict[int, nn.Module]:
    """Layer index -> that decoder layer's self-attention module (LoRA wrappers included)."""
    found = {
        module.layer_idx: module
        for module in model.modules()
        if type(module).__name__.endswith("Attention") and isinstance(getattr(module, "layer_idx", None), int)
    }
    if not found:
        raise ValueError(
            f"found no attention modules with a layer_idx in {type(model).__name__}; attention credit needs a "
            "transformers decoder whose attention goes through the AttentionInterface (Qwen2, Llama, ...)"
        )
    return found


def probe_layers(num_layers: int, requested: list[int]) -> list[int]:
    """The requested layers, checked; by default up to 5 evenly spaced layers of the middle third
    (floor(L/3)..floor(2L/3)), which the paper found better than the bottom, top or all layers."""
    if requested:
        wrong = [layer for layer in requested if layer >= num_layers]
        if wrong:
            raise ValueError(
                f"algorithm.attention_credit.layers {wrong} do not exist: the model has {num_layers} layers (0-based)"
            )
        return sorted(set(requested))
    low, high = num_layers // 3, (2 * num_layers) // 3
    count = min(5, high - low + 1)
    return sorted({round(low + i * (high - low) / max(count - 1, 1)) for i in range(count)})


@contextmanager
def _capturing(modules: list[nn.Module]) -> Iterator[list[list[torch.Tensor]]]:
    sinks: list[list[torch.Tensor]] = [[] for _ in modules]
    originals = [module.config for module in modules]
    captures = {}
    for module, sink in zip(modules, sinks, strict=True):
        captures[module] = (module.config._attn_implementation, sink)
        probe_config = copy.copy(module.config)
        probe_config._attn_implementation_internal = PROBE  # this module only: the shared config is untouched
        module.config = probe_config
    token = _CAPTURES.set(captures)
    try:
        yield sinks
    finally:
        _CAPTURES.reset(token)
        for module, config in zip(modules, originals, strict=True):
            module.config = config


@torch.no_grad()
def probe_attention(
    model: PreTrainedModel,
    batch: Batch,
    pad_id: int,
    layers: list[int],
    token_budget: int,
    parallel: DataParallel = SINGLE,
) -> list[torch.Tensor]:
    """Per row, a float32 CPU tensor [layers · heads, N, N] of its probe layers' attention over its own
    prompt + response (N tokens), in length-bucketed micro-batches; with several learner ranks each probes its
    own rows and every rank gets them all."""
    modules = attention_modules(model)
    chosen = [modules[layer] for layer in probe_layers(len(modules), layers)]
    device = next(model.parameters()).device
    rows: dict[int, torch.Tensor] = {}
    was_training = model.training
    model.eval()
    try:
        for group in parallel.micro_plan(batch, token_budget):
            part = batch.select(group) if group is not None else padding_part(batch)
            inputs = model_inputs(part, pad_id).to(device)
            with _capturing(chosen) as sinks:
                model(
                    input_ids=inputs.input_ids, attention_mask=inputs.attention_mask, use_cache=False, logits_to_keep=1
                )
            if group is None:
                continue
            maps = torch.cat([sink[0] for sink in sinks], dim=1)  # [b, layers · heads, L, L]
            for index, row in enumerate(group):
                length = len(batch.prompt_ids[row]) + len(batch.response_ids[row])
                rows[row] = maps[index, :, :length, :length]
    finally:
        model.train(was_training)
    for shard in parallel.gather_objects(rows):
        rows |= shard
    return [rows[row] for row in range(len(batch))]
