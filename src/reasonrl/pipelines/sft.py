"""`reasonrl sft`: supervised fine-tuning (`train.sft`) on its own, producing a Hugging Face folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reasonrl.config import RunConfig, dump_config
from reasonrl.data import load_source
from reasonrl.models.resolve import resolve_model_path
from reasonrl.pipelines.setup import seed_everything, start_model
from reasonrl.tracking import RunDirectory
from reasonrl.training.models import configure_threads


def run_sft(config: RunConfig, on_step: Callable[[int, dict[str, float]], None] | None = None) -> Path:
    if config.train.sft.steps == 0:
        raise ValueError("train.sft.steps is 0: nothing to train; set it, e.g. --set train.sft.steps=200")
    seed_everything(config.train.seed)
    configure_threads(config.train.num_threads)
    directory = RunDirectory.create(config.logging.run_dir, config_text=dump_config(config))
    prompts, _ = load_source(config.data.train, config_key="data.train")
    return start_model(
        config, resolve_model_path(config.model.path), directory, prompts, on_step or (lambda s, m: None)
    )
