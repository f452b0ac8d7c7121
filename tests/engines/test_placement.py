"""`rollout.placement`: the factory builds the same hf engine colocated, on a thread's own weight copy, or
in a worker process; only the colocated one shares the learner's module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from reasonrl.engines.base import GenerationRequest, SamplingSettings
from reasonrl.engines.factory import LearnerWeights, build_placed_engine, choose_placement
from reasonrl.engines.hf import HFEngine
from reasonrl.engines.remote import EngineProcess

SAMPLE = SamplingSettings(max_new_tokens=6, temperature=1.0)


def _learner(tiny_model_dir: Path, tokenizer) -> LearnerWeights:  # type: ignore[no-untyped-def]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return LearnerWeights(
        model, model, tokenizer, lambda: model.state_dict().items(), torch.device("cpu"), tiny_model_dir
    )


def test_auto_placement_is_todays_choice() -> None:
    assert choose_placement("auto", "hf", "sync") == choose_placement("auto", "vllm", "sync") == "colocated"
    assert (choose_placement("auto", "hf", "async"), choose_placement("auto", "vllm", "async")) == ("thread", "process")
    assert choose_placement("process", "hf", "sync") == "process"


def test_every_placement_of_the_hf_engine_samples_the_same_responses(
    tiny_model_dir: Path,
    tmp_path: Path,
    tokenizer,
    prompt_ids,  # type: ignore[no-untyped-def]
) -> None:
    learner = _learner(tiny_model_dir, tokenizer)
    requests = [GenerationRequest(prompt_ids=ids) for ids in prompt_ids]

    def build(placement: str):  # type: ignore[no-untyped-def]
        return build_placed_engine(
            "hf", placement, learner, pipeline="sync", work_dir=tmp_path, seed=5, dtype="float32", max_model_len=64
        )

    colocated, thread, process = build("colocated"), build("thread"), build("process")
    try:
        assert isinstance(colocated, HFEngine) and colocated.model is learner.module
        assert isinstance(thread, HFEngine) and thread.model is not learner.module
        assert not thread.shares_learner_module and isinstance(process, EngineProcess)
        expected = [g.response_ids for g in colocated.generate(requests, SAMPLE)]
        assert [g.response_ids for g in thread.generate(requests, SAMPLE)] == expected
        assert [g.response_ids for g in process.generate(requests, SAMPLE)] == expected
    finally:
        process.close()


def test_a_placement_that_cannot_build_the_engine_says_how_to_fix_it(
    tiny_model_dir: Path, tmp_path: Path, tokenizer
) -> None:  # type: ignore[no-untyped-def]
    learner = _learner(tiny_model_dir, tokenizer)
    with pytest.raises(ValueError, match=r"builds the hf engine only, not 'vllm'; set rollout\.engine: hf"):
        build_placed_engine(
            "vllm", "thread", learner, pipeline="async", work_dir=tmp_path, seed=0, dtype="auto", max_model_len=64
        )
