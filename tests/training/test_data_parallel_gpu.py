"""The sharded learner on a GPU (nccl): one FSDP2 rank computes the plain learner's gradient and exports the
same weights. Skipped without CUDA; `benchmarks/gpu_check.sh` runs it on a one-GPU machine."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reasonrl.config import load_config
from reasonrl.training.learner import Learner
from reasonrl.training.parallel import SINGLE, DataParallel

from .learner_ranks import run_ranks
from .test_data_parallel import one_update

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.timeout(300),
]


def on_gpu(parallel: DataParallel, folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    config = load_config(None, ["rollout.group_size=4", "rollout.batch_size=8", "train.micro_batch_tokens=20"])
    torch.manual_seed(0)
    learner = Learner(
        folder, config.model, config.train, config.algorithm, torch.device("cuda"), max_new_tokens=8, parallel=parallel
    )
    grads, _ = one_update(learner)
    weights = {name: tensor.detach().cpu().clone() for name, tensor in learner.engine_weights()}
    return {name: grad.cpu() for name, grad in grads.items()}, weights


def test_one_fsdp2_rank_on_a_gpu_gives_the_plain_learner_gradient(tiny_model_dir: Path) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    plain_grads, plain_weights = on_gpu(SINGLE, tiny_model_dir)
    sharded_grads, sharded_weights = run_ranks(1, "fsdp2", on_gpu, tiny_model_dir)
    assert plain_grads.keys() == sharded_grads.keys() and plain_grads
    for name, grad in plain_grads.items():
        assert float((grad - sharded_grads[name]).abs().max()) <= 1e-5, name
    assert plain_weights.keys() == sharded_weights.keys()
    for name, weight in plain_weights.items():
        assert float((weight - sharded_weights[name]).abs().max()) <= 1e-4, name
