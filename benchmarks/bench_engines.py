"""Rollout engines side by side on one batch: what `rollout.engine: auto` is decided by.

Generates the same 64 requests (8 prompts x 8 samples) with the hf engine and the vLLM engine on the
built-in tiny model, at two response lengths, and reports start-up seconds, steady-state samples/s (median
of several batches after a warm-up batch) and their ratio, plus the break-even: how many batches vLLM must
generate before its faster batches (if any) pay back its start-up.

    python benchmarks/bench_engines.py [--batches 5]

Writes benchmarks/results/engines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "engines.json"
LENGTHS = (16, 64)


def requests_for(tokenizer, count: int = 8, copies: int = 8):  # type: ignore[no-untyped-def]
    from reasonrl.data import load_prompts
    from reasonrl.engines.base import GenerationRequest

    prompts = load_prompts(f"sum?size={count}")
    ids = [tokenizer(p.question, add_special_tokens=False)["input_ids"] for p in prompts]
    return [GenerationRequest(prompt_ids=i) for i in ids for _ in range(copies)]


def measure(engine, requests, batches: int) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    from reasonrl.engines.base import SamplingSettings

    out = {}
    for length in LENGTHS:
        sampling = SamplingSettings(max_new_tokens=length, temperature=1.0)
        engine.generate(requests, sampling)  # warm-up (vLLM compiles on its first batches)
        times, tokens = [], []
        for _ in range(batches):
            start = time.perf_counter()
            generations = engine.generate(requests, sampling)
            times.append(time.perf_counter() - start)
            tokens.append(sum(len(g.response_ids) for g in generations))
        seconds = statistics.median(times)
        out[str(length)] = {
            "median_batch_seconds": round(seconds, 4),
            "samples_per_second": round(len(requests) / seconds, 1),
            "tokens_per_second": round(statistics.fmean(tokens) / seconds, 1),
            "mean_response_tokens": round(statistics.fmean(tokens) / len(requests), 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonrl.engines.base import SamplingSettings
    from reasonrl.engines.hf import HFEngine
    from reasonrl.engines.vllm import VLLMEngine
    from reasonrl.models.resolve import resolve_model_path

    torch.set_num_threads(1)
    folder = resolve_model_path("builtin:tiny")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    requests = requests_for(tokenizer)
    load_before = os.getloadavg()[0]

    start = time.perf_counter()
    hf = HFEngine(AutoModelForCausalLM.from_pretrained(folder), tokenizer, seed=0)
    hf_startup = time.perf_counter() - start
    hf_results = measure(hf, requests, args.batches)

    start = time.perf_counter()
    vllm = VLLMEngine(folder, seed=0, max_model_len=256)
    vllm.generate(requests[:1], SamplingSettings(max_new_tokens=1))
    vllm_startup = time.perf_counter() - start
    vllm_results = measure(vllm, requests, args.batches)

    result = {
        "benchmark": "hf vs vLLM rollout engine on the tiny model, 64 requests per batch",
        "command": "python benchmarks/bench_engines.py",
        "machine": {"cpus": os.cpu_count(), "load_average_1min_before": round(load_before, 2)},
        "python": platform.python_version(),
        "torch_threads": 1,
        "hf": {"startup_seconds": round(hf_startup, 2), **hf_results},
        "vllm": {"startup_seconds": round(vllm_startup, 2), **vllm_results},
    }
    for length in map(str, LENGTHS):
        hf_batch = hf_results[length]["median_batch_seconds"]
        vllm_batch = vllm_results[length]["median_batch_seconds"]
        result[f"vllm_over_hf_samples_per_second_{length}"] = round(hf_batch / vllm_batch, 2)
        saved = hf_batch - vllm_batch
        result[f"break_even_batches_{length}"] = (
            round((vllm_startup - hf_startup) / saved, 1) if saved > 0 else "never (vLLM is not faster per batch)"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
