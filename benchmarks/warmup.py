"""The supervised warm-up checkpoint benchmarks start RL from, built once per recipe and work folder.

Shared by bench_ablation.py and bench_async.py so that their runs start from the same weights and differ only
in what they measure.
"""

from __future__ import annotations

from pathlib import Path

from reasonrl.config import load_config
from reasonrl.pipelines.sft import run_sft

RECIPES = Path(__file__).parents[1] / "src" / "reasonrl" / "recipes"
DEMO = RECIPES / "demo.yaml"


def build_warmup(work: Path, recipe: Path = DEMO) -> Path:
    """`recipe`'s warm-up model, trained once under `work` and reused by every later call."""
    folder = work / "warmup" / "sft_model"
    if (folder / "config.json").is_file():
        return folder
    config = load_config(recipe, [f"logging.run_dir={work / 'warmup'}", "logging.progress=false"])
    return run_sft(config)
