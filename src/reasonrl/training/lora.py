"""LoRA weights merged out of place: the full model's weights for engines and checkpoints, base untouched.

peft's `merge_adapter()` adds each adapter's delta into the frozen base weight and `unmerge_adapter()`
subtracts it again. In bf16 that round trip is lossy (the delta is rounded to bf16 before it is subtracted),
and the learner exported weights this way on every async step, checkpoint and engine sync: on the tiny model
with trained adapters, 28 of 50 base tensors had drifted after 100 exports, by up to 0.049. The frozen base
is also the KL reference (adapters disabled), so the drift moved the reference too. Here every merged weight
is a copy, W + ΔW, computed exactly as peft's merge computes it, so the values are those of the first merge
and the base is never written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import torch
from torch import Tensor, nn

UNSUPPORTED_FIX = (
    "Export needs plain LoRA (no DoRA or other LoRA variant, no lora_bias) on Linear or Embedding layers "
    "(model.lora.target_modules); merge such an adapter with peft's merge_and_unload on a copy of the model."
)


def merged_weights(model: nn.Module) -> Iterator[tuple[str, Tensor]]:
    """Every tensor of peft's base model (`PeftModel.get_base_model()`) under its Hugging Face name, each a
    copy: a LoRA layer's weight with its active, unmerged adapters added, adapter tensors left out.

    Raises ValueError, before yielding anything, on a LoRA layer it cannot merge out of place.
    """
    layers = _mergeable_layers(model)
    state = model.state_dict()
    shares = Counter(tensor.data_ptr() for tensor in state.values())
    merged: dict[int, Tensor] = {}  # only for a weight that appears under two names (tied embeddings)
    for name, tensor in state.items():
        if "lora_" in name:
            continue
        layer = layers.get(tensor.data_ptr())
        if layer is None or tensor.shape != layer.get_base_layer().weight.shape:
            yield hf_name(name), tensor.clone()
            continue
        weight = merged.get(tensor.data_ptr())
        if weight is None:
            weight = merged_weight(layer)
            if shares[tensor.data_ptr()] > 1:
                merged[tensor.data_ptr()] = weight
        yield hf_name(name), weight


def hf_name(name: str) -> str:
    """A peft base-model key under the name the Hugging Face model has without LoRA."""
    return name.replace(".base_layer.", ".")


@torch.no_grad()
def merged_weight(layer: nn.Module) -> Tensor:
    """A copy of `layer`'s base weight with its active, not yet merged adapters added, in the weight's dtype:
    the same operations, in the same order, as peft's `merge()` (Linear adds the delta as computed, Embedding
    casts it to the weight's dtype first), so the values are bitwise those of `merge_adapter()`."""
    from peft.tuners.lora import Embedding

    weight = layer.get_base_layer().weight.detach().clone()
    for adapter in _adapters_to_merge(layer):
        delta = layer.get_delta_weight(adapter)
        weight += delta.to(weight.dtype) if isinstance(layer, Embedding) else delta
    return weight


def _adapters_to_merge(layer: nn.Module) -> list[str]:
    """What `merge_adapter()` would add: the active adapters the layer holds that are not merged already."""
    from peft.tuners.lora import Embedding

    held = layer.lora_embedding_A if isinstance(layer, Embedding) else layer.lora_A
    return [a for a in layer.active_adapters if a in held and a not in layer.merged_adapters]


def _mergeable_layers(model: nn.Module) -> dict[int, nn.Module]:
    """The model's LoRA layers by the storage of their base weight; ValueError naming the fix on a layer whose
    merge is not W + ΔW (a DoRA or other variant, lora_bias, a quantised or non-Linear/Embedding base)."""
    from peft.tuners.lora import Embedding, Linear, LoraLayer

    layers: dict[int, nn.Module] = {}
    for path, module in model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        problem = _unsupported(module, (Linear, Embedding))
        if problem:
            raise ValueError(f"cannot merge the LoRA layer {path!r} out of place: {problem}. {UNSUPPORTED_FIX}")
        layers[module.get_base_layer().weight.data_ptr()] = module
    return layers


def _unsupported(layer: nn.Module, kinds: tuple[type, ...]) -> str | None:
    """Why `merged_weight` would mis-merge `layer`, or None when it is plain LoRA on a float weight."""
    if not isinstance(layer, kinds):
        return f"{type(layer).__name__} layers are not supported"
    weight = getattr(layer.get_base_layer(), "weight", None)
    if not isinstance(weight, Tensor) or not weight.dtype.is_floating_point:
        return "its base weight is not a floating-point tensor (a quantised layer?)"
    for adapter in _adapters_to_merge(layer):
        variant = getattr(layer, "lora_variant", {}).get(adapter)
        if variant is not None or getattr(layer, "use_dora", {}).get(adapter, False):
            kind = type(variant).__name__ if variant is not None else "DoRA"
            return f"adapter {adapter!r} is a LoRA variant ({kind}), whose merge is not W + delta"
        if getattr(layer, "lora_bias", {}).get(adapter, False):
            return f"adapter {adapter!r} has lora_bias, which merges into the bias as well"
    return None


def merged_from_gathered(model: nn.Module, gathered: Iterator[tuple[str, Tensor]]) -> Iterator[tuple[str, Tensor]]:
    """`merged_weights` for a sharded model (FSDP2), whose LoRA layers cannot compute a delta from their own
    shards: `gathered` is peft's base-model state dict as whole tensors, one at a time (`DataParallel.
    full_tensors`); each LoRA layer's base weight waits for its adapters' A and B (which follow it, and are
    small) and goes out as W + ΔW, computed as peft's `Linear.get_delta_weight` computes it. Linear LoRA only.

    Raises ValueError, before yielding anything, on a LoRA layer it cannot merge this way.
    """
    from peft.tuners.lora import Linear

    layers = {path: layer for path, layer in _lora_layers(model)}
    for path, layer in layers.items():
        problem = _unsupported(layer, (Linear,))
        if problem:
            raise ValueError(f"cannot merge the LoRA layer {path!r} of a sharded model: {problem}. {UNSUPPORTED_FIX}")
    pending: dict[str, dict[str, Tensor]] = {}
    for name, tensor in gathered:
        path, part = _lora_part(name, layers)
        if path is None:
            yield hf_name(name), tensor
            continue
        if part.startswith("base_layer.") and part != "base_layer.weight":
            yield hf_name(name), tensor  # the bias: LoRA does not touch it
            continue
        pieces = pending.setdefault(path, {})
        pieces[part] = tensor
        layer = layers[path]
        adapters = _adapters_to_merge(layer)
        wanted = {"base_layer.weight"} | {f"lora_{ab}.{a}.weight" for a in adapters for ab in "AB"}
        if wanted <= pieces.keys():
            del pending[path]
            yield f"{path}.weight", _merge(layer, pieces, adapters)


@torch.no_grad()
def _merge(layer: nn.Module, pieces: dict[str, Tensor], adapters: list[str]) -> Tensor:
    """W + Σ ΔW over `adapters`, ΔW = transpose(B @ A) · scaling, with peft's float32 detour for bf16/fp16 on CPUs."""
    from peft.utils.other import transpose

    weight = pieces["base_layer.weight"].clone()
    for adapter in adapters:
        a, b = pieces[f"lora_A.{adapter}.weight"], pieces[f"lora_B.{adapter}.weight"]
        upcast = b.device.type == "cpu" and b.dtype in (torch.float16, torch.bfloat16)
        delta = transpose((b.float() @ a.float()) if upcast else b @ a, layer.fan_in_fan_out) * layer.scaling[adapter]
        weight += delta.to(b.dtype) if upcast else delta
    return weight


def _lora_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    from peft.tuners.lora import LoraLayer

    for path, module in model.named_modules():
        if isinstance(module, LoraLayer):
            yield path, module


def _lora_part(name: str, layers: dict[str, nn.Module]) -> tuple[str | None, str]:
    """(the LoRA layer a state-dict key belongs to, the rest of the key), or (None, key)."""
    for marker in (".base_layer.", ".lora_A.", ".lora_B."):
        if marker in name:
            path, rest = name.split(marker, 1)
            if path in layers:
                return path, marker[1:] + rest
    return None, name
