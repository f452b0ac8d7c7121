"""The vLLM engine for real (the CPU build in CI): behaviour log-probs equal the learner's for the same
weights, before and after an in-place weight update, and updated weights change what it samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from reasonrl.training.batch import Batch
from reasonrl.training.forward import score_responses

PROBE = Path(__file__).with_name("vllm_probe.py")
# vLLM's CPU kernels and transformers' differ in summation order; measured differences are ~5e-7.
TOLERANCE = 1e-4


@pytest.mark.slow
def test_vllm_logprobs_match_the_learner_before_and_after_update(
    tiny_model_dir, tokenizer, prompt_ids, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    updated = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in updated.parameters():  # embeddings included: they are tied to the output layer
            parameter.add_(torch.randn_like(parameter) * 0.05)
    updated.save_pretrained(tmp_path / "updated")
    done = subprocess.run(
        [sys.executable, str(PROBE), str(tiny_model_dir), str(tmp_path / "updated"), json.dumps(prompt_ids)],
        capture_output=True,
        text=True,
        env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"},
        timeout=540,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    result = json.loads(lines[0].removeprefix("RESULT "))
    assert result["version"] == 1

    prompts = [ids for ids in prompt_ids for _ in range(4)]
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    for key, model in (
        ("before", original),
        ("after", updated),
        ("before_greedy", original),
        ("after_greedy", updated),
        ("after_scored", updated),  # `score` gives the learner's log-probs of given tokens too
    ):
        generations = result[key]
        batch = Batch.from_ids(prompts, [g["ids"] for g in generations])
        learner, _ = score_responses(model, batch, tokenizer.pad_token_id, token_budget=10_000)
        engine = batch.padded([g["logprobs"] for g in generations])
        torch.testing.assert_close(engine, learner, atol=TOLERANCE, rtol=0, msg=key)
    assert [g["ids"] for g in result["before_greedy"]] != [g["ids"] for g in result["after_greedy"]]
    # A stop token ends a response and stays in it (episodes stop a turn on `</tool_call>` so).
    stops = set(result["stop_ids"])
    hits = 0
    for generation in result["stopped"]:
        ids = generation["ids"]
        assert not stops & set(ids[:-1])
        if ids[-1] in stops:
            hits += 1
            assert generation["finish"] == "stop" and len(generation["logprobs"]) == len(ids)
    assert hits > 0
