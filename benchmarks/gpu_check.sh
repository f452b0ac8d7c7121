#!/usr/bin/env bash
# GPU checks for a machine with one GPU (an H100 or H200) where PyTorch, transformers, accelerate and peft are
# installed, vLLM is not, and nothing can be downloaded. Writes JSON under $OUT (default benchmarks/results/gpu).
#
#   benchmarks/gpu_check.sh --prepare   # on a connected machine: the pure-Python wheels the GPU machine lacks,
#                                       # into benchmarks/gpu_wheels/ (git-ignored, ~10 MB; travels with the tree)
#   benchmarks/gpu_check.sh             # on the GPU machine, from the repository root (under 8 minutes)
#
# What runs: the GPU-marked tests (`pytest -m gpu`: the one-rank FSDP2 learner over nccl against the plain
# learner, gradient and exported weights), then a timed FSDP2 update on the GPU against the plain learner.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=benchmarks/gpu_wheels
OUT=${OUT:-benchmarks/results/gpu}

if [[ "${1:-}" == "--prepare" ]]; then
    # reasonrl's own imports beyond torch/transformers/peft/accelerate, and pytest's; binary wheels for
    # CPython 3.11+ on manylinux x86_64 (pydantic-core is the only compiled one).
    python -m pip download --dest "$WHEELS" --only-binary=:all: --python-version 3.11 \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any \
        "pydantic>=2.7" "typer>=0.12" "rich>=13" "pyyaml>=6" "math-verify>=0.9" \
        "pytest>=8" "pytest-timeout>=2.3" "hypothesis>=6.100"
    du -sh "$WHEELS"
    exit 0
fi

mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
if [[ -d "$WHEELS" ]]; then
    python -m pip install --quiet --no-index --find-links "$WHEELS" pydantic typer rich pyyaml math-verify \
        pytest pytest-timeout hypothesis
fi
python -m pip install --quiet --no-deps --no-build-isolation -e .

timeout 240 python -m pytest -q -p no:cacheprovider -m gpu tests/training/test_data_parallel_gpu.py \
    --junitxml "$OUT/gpu_tests.xml" 2>&1 | tail -5

timeout 180 python - "$OUT/fsdp2_gpu.json" <<'PY'
"""One FSDP2 rank on the GPU (nccl) against the plain learner: update seconds on the same batch."""
import json, os, sys, tempfile, time
from datetime import timedelta

import torch
import torch.distributed as dist

from reasonrl.config import load_config
from reasonrl.models.resolve import resolve_model_path
from reasonrl.training.learner import Learner
from reasonrl.training.parallel import SINGLE, DataParallel

config = load_config(None, ["model.path=builtin:small", "rollout.group_size=4", "rollout.batch_size=32",
                            "rollout.max_new_tokens=64", "train.micro_batch_tokens=8192"])
folder = resolve_model_path(config.model.path)
prompts = [[5 + (i * 7 + j) % 1000 for j in range(48)] for i in range(32)]
answers = [[9 + (i * 13 + j) % 1000 for j in range(32 + i)] for i in range(32)]
rewards = [float(i % 3 == 0) for i in range(32)]
init = tempfile.mktemp()
dist.init_process_group("nccl", init_method=f"file://{init}", rank=0, world_size=1, timeout=timedelta(seconds=60))
result = {"gpu": torch.cuda.get_device_name(0)}
for name, parallel in (("plain", SINGLE), ("fsdp2", DataParallel(strategy="fsdp2"))):
    torch.manual_seed(0)
    learner = Learner(folder, config.model, config.train, config.algorithm, torch.device("cuda"),
                      max_new_tokens=64, parallel=parallel)
    seconds = []
    for _ in range(4):
        torch.cuda.synchronize(); started = time.perf_counter()
        batch, _ = learner.prepare(prompts, answers, [[-1.0] * len(a) for a in answers], rewards, 4)
        metrics = learner.update(batch, 4)
        torch.cuda.synchronize(); seconds.append(time.perf_counter() - started)
    result[name] = {"step_seconds": sorted(seconds[1:])[1], "loss": metrics["loss/policy"],
                    "grad_norm": metrics["train/grad_norm"]}
dist.destroy_process_group()
result["fsdp2_vs_plain"] = result["plain"]["step_seconds"] / result["fsdp2"]["step_seconds"]
json.dump(result, open(sys.argv[1], "w"), indent=2)
print(json.dumps(result, indent=2))
PY
echo "results in $OUT"
