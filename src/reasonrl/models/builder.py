"""Build a Qwen2-architecture model and tokenizer from scratch, saved as a normal Hugging Face folder.

Tests and the demo need a model without any hub download; a from-scratch Qwen2 folder is loaded by the same
code paths (transformers, vLLM) as Qwen2.5 or SmolLM2, so nothing is special-cased for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch
from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from reasonrl.models.tokenizer import bpe_tokenizer, byte_tokenizer


@dataclass(frozen=True)
class ModelPreset:
    """Shape of a from-scratch model. head_dim 64 keeps it inside vLLM's supported CPU attention sizes."""

    tokenizer: Literal["byte", "bpe"]
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    max_positions: int
    bpe_vocab_size: int = 0
    description: str = ""
    tool_tokens: bool = False  # <tool_call> & co. as single special tokens (byte tokenizer), for tool use


TINY = ModelPreset(
    tokenizer="byte",
    hidden_size=128,
    num_layers=4,
    num_heads=2,
    num_kv_heads=1,
    intermediate_size=384,
    max_positions=1024,
    description="~0.8M parameters, byte-level tokenizer (a token per ASCII character): "
    "trains on the built-in tasks in minutes on a CPU",
)

PRESETS: dict[str, ModelPreset] = {
    "tiny": TINY,
    "tiny-tools": replace(
        TINY,
        tool_tokens=True,
        description="the tiny model with <tool_call>, </tool_call>, <tool_response>, </tool_response> as single "
        "special tokens and a chat template for tool turns: the agents' demo model (rollout.environment)",
    ),
    "small": ModelPreset(
        tokenizer="bpe",
        hidden_size=256,
        num_layers=6,
        num_heads=4,
        num_kv_heads=2,
        intermediate_size=768,
        max_positions=2048,
        bpe_vocab_size=2048,
        description="~5M parameters, BPE (2,048 tokens) trained on the task text",
    ),
}


def build_tokenizer(preset: ModelPreset, corpus: Iterable[str] | None) -> PreTrainedTokenizerFast:
    if preset.tokenizer == "byte":
        return byte_tokenizer(tools=preset.tool_tokens)
    if corpus is None:
        raise ValueError("a BPE tokenizer needs a corpus of task text to train on")
    return bpe_tokenizer(corpus, preset.bpe_vocab_size)


def build_model(preset: ModelPreset, tokenizer: PreTrainedTokenizerFast, seed: int) -> Qwen2ForCausalLM:
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=preset.hidden_size,
        num_hidden_layers=preset.num_layers,
        num_attention_heads=preset.num_heads,
        num_key_value_heads=preset.num_kv_heads,
        head_dim=preset.hidden_size // preset.num_heads,
        intermediate_size=preset.intermediate_size,
        max_position_embeddings=preset.max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config)


def init_model(out_dir: str | Path, preset: str = "tiny", seed: int = 0, corpus: Iterable[str] | None = None) -> Path:
    """Write tokenizer, config, generation config and random weights for `preset` into `out_dir`."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {sorted(PRESETS)}")
    spec = PRESETS[preset]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(spec, corpus)
    model = build_model(spec, tokenizer, seed)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=True
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "reasonrl_preset.json").write_text(
        json.dumps({"preset": preset, "seed": seed, **asdict(spec)}, indent=2) + "\n"
    )
    return out


def parameter_count(model: torch.nn.Module) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
