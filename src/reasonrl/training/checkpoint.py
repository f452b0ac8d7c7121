"""Checkpoints: a Hugging Face model folder plus everything needed to continue a run exactly.

Layout of `RUN_DIR/checkpoints/step_000010/`: `model/` (save_pretrained + tokenizer, loadable by transformers
and vLLM), `learner/` (with several learner ranks: their sharded weights and optimizer states, written by
`torch.distributed.checkpoint`), `trainer.pt` (optimizer, scheduler, RNG states, engine sampling state, step
and version counters), `state.json` (data cursor and other JSON-able pipeline state). Each is written into a
temporary directory that is renamed into place, so a crash mid-save never leaves a half checkpoint that resume
would trust.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

PREFIX = "step_"

TRAINER_FILE = "trainer.pt"  # optimizer, scheduler and RNG states of a checkpoint
STATE_FILE = "state.json"  # data cursor, counters and other JSON-able pipeline state


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:06d}"


def rng_states() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(
    root: Path,
    step: int,
    *,
    save_learner: Callable[[Path], dict[str, Any]],
    trainer_state: dict[str, Any],
    pipeline_state: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write checkpoint `step` atomically under `root`, then delete all but the newest `keep_last`.

    `save_learner(folder)` writes the learner's files into the checkpoint folder (`model/`, the Hugging Face
    model and tokenizer; `learner/`, its sharded state with several ranks) and returns the rest of its state,
    which goes into the trainer file under `learner`.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    staging = Path(tempfile.mkdtemp(prefix=f".{checkpoint_name(step)}-", dir=root))
    try:
        learner = save_learner(staging)
        torch.save({**trainer_state, "learner": learner, "rng": rng_states()}, staging / TRAINER_FILE)
        (staging / STATE_FILE).write_text(json.dumps({"step": step, **pipeline_state}, indent=2))
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for old in list_checkpoints(root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (staging directories start with '.' and are ignored)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def load_checkpoint(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(trainer state, pipeline state) of a checkpoint folder; RNG states are restored by the caller."""
    trainer = torch.load(folder / TRAINER_FILE, weights_only=False)
    return trainer, load_pipeline_state(folder)


def load_pipeline_state(folder: Path) -> dict[str, Any]:
    """The JSON-able pipeline state of a checkpoint folder (`state.json`: step, sampler cursor, counters and
    whatever the pipeline added, e.g. its rollout scheduler's state)."""
    state: dict[str, Any] = json.loads((folder / STATE_FILE).read_text())
    return state


def load_producer_state(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the async producer engine's RNG state, pipeline state) of a checkpoint folder. The trainer file is
    memory-mapped, so only the RNG state is read, not the optimizer state `load_checkpoint` already loaded.
    Checkpoints from before the producer had an engine of its own hold only `engine_rng`."""
    trainer = torch.load(folder / TRAINER_FILE, mmap=True, weights_only=False)
    return trainer.get("producer_rng", trainer["engine_rng"]), load_pipeline_state(folder)
