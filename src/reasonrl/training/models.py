"""Load the policy (and, only when a KL term needs it, a frozen reference) as Hugging Face models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from reasonrl.config.schema import ModelConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("backend.device is 'cuda' but no CUDA device is visible; set backend.device: cpu or auto")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def physical_cores() -> int:
    """Cores this process may use, counting hyper-threads once (sibling threads slow torch's CPU kernels)."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        siblings = Path("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list").read_text()
        per_core = len(siblings.replace("-", ",").split(",")) if "," in siblings or "-" in siblings else 1
    except OSError:
        per_core = 1
    return max(1, available // per_core)


def configure_threads(num_threads: int) -> int:
    """Size torch's intra-op pool: the configured count, or one per physical core but one.

    The spare core runs what else a step needs (reward workers, data, the OS); an intra-op pool that
    competes with them for every core stalls on its barriers: on the 2-core CI machine, with one other busy
    process, 20 warm-up steps of the tiny model took 77 s with 2 threads and 3.9 s with 1.
    """
    threads = thread_budget(num_threads)
    torch.set_num_threads(threads)
    return threads


def thread_budget(num_threads: int) -> int:
    """The run's torch threads (`train.num_threads`): the configured count, or one per physical core but one."""
    return num_threads or max(1, physical_cores() - 1)


def load_tokenizer(folder: Path) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        # Padding is masked out everywhere; reusing EOS as pad only needs *some* id.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def loading_options(config: ModelConfig) -> dict[str, Any]:
    """`from_pretrained` keyword arguments every model of a run (policy, reference, critic) is loaded with."""
    return {
        "dtype": DTYPES[config.dtype],
        "attn_implementation": None if config.attn_implementation == "auto" else config.attn_implementation,
        "trust_remote_code": config.trust_remote_code,
    }


def load_policy(folder: Path, config: ModelConfig, device: torch.device) -> PreTrainedModel:
    """The trainable policy: full weights, or LoRA adapters on frozen weights."""
    model = AutoModelForCausalLM.from_pretrained(folder, **loading_options(config)).to(device)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if config.lora.enabled:
        from peft import LoraConfig, get_peft_model

        lora = config.lora
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=lora.target_modules,
                task_type="CAUSAL_LM",
            ),
        )
    model.train()
    return model


def load_reference(folder: Path, config: ModelConfig, device: torch.device) -> PreTrainedModel:
    """A frozen copy of the initial policy for the KL term."""
    model = AutoModelForCausalLM.from_pretrained(folder, **loading_options(config)).to(device)
    model.eval().requires_grad_(False)
    return model
