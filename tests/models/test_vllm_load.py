"""A from-scratch folder is a real vLLM model: vLLM (the CPU build) loads it and decodes like transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = ["4-1-7=", "23+45=", "What is 6*7?"]

# vLLM runs in a child process: it configures process-wide state (env, compile caches) that must not leak
# into the rest of the suite. The guard matters because vLLM spawns workers.
VLLM_SCRIPT = """
import json, os, sys
os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
if __name__ == "__main__":
    from vllm import LLM, SamplingParams
    folder, prompts = sys.argv[1], json.loads(sys.argv[2])
    llm = LLM(model=folder, dtype="float32", max_model_len=256, seed=0, gpu_memory_utilization=0.2,
              enforce_eager=True)
    outputs = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=12))
    print("RESULT " + json.dumps([list(o.outputs[0].token_ids) for o in outputs]))
"""


@pytest.mark.slow
def test_vllm_loads_the_folder_and_greedy_matches_transformers(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rendered = [
        tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        for p in PROMPTS
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", VLLM_SCRIPT, str(tiny_model_dir), json.dumps(rendered)],
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    vllm_tokens = json.loads(lines[0].removeprefix("RESULT "))

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    for text, tokens in zip(rendered, vllm_tokens, strict=True):
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)
        expected = out[0, ids.shape[1] :].tolist()
        # vLLM stops at EOS; transformers was told not to, so compare up to vLLM's length.
        assert tokens == expected[: len(tokens)] and len(tokens) >= 1
