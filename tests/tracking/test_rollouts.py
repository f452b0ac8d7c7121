"""Rollout dumps: round trip of arbitrary records, arrays, non-finite log-probs, cadence and resume."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from reasonrl.config.schema import LoggingConfig
from reasonrl.tracking import RunDirectory, Tracker, read_rollouts, write_rollouts

RECORDS = [
    {
        "prompt": "What is 2+3?",
        "response": "5 ✓",
        "reward": 1.0,
        "reward_info": {"math": 1.0, "format": 0.0, "error": None},
        "response_ids": [53, 2],
        "behaviour_logprobs": [-0.25, -1.5],
        "credit_weights": [1.0, 0.5],
    },
    {"prompt": "1+1?", "response": "", "reward": 0.0, "reward_info": {}, "response_ids": []},
]


def test_round_trip(tmp_path: Path) -> None:
    path = write_rollouts(tmp_path / "rollouts" / "step_000001.jsonl", RECORDS)
    assert read_rollouts(path) == RECORDS
    assert len(path.read_text().splitlines()) == 2


def test_arrays_become_lists_and_non_finite_become_null(tmp_path: Path) -> None:
    record = {"ids": np.array([1, 2]), "logprobs": torch.tensor([-0.5, -math.inf]), "reward": math.nan}
    path = write_rollouts(tmp_path / "d.jsonl", [record])
    assert read_rollouts(path) == [{"ids": [1, 2], "logprobs": [-0.5, None], "reward": None}]


def test_unwritable_values_name_their_place_and_leave_no_file(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"rollout record 1\.meta\.when has type object"):
        write_rollouts(tmp_path / "d.jsonl", [{"a": 1}, {"meta": {"when": object()}}])
    with pytest.raises(TypeError, match="rollout record 0 is a list"):
        write_rollouts(tmp_path / "d.jsonl", [[1, 2]])  # type: ignore[list-item]
    assert list(tmp_path.iterdir()) == []


def test_tracker_cadence_and_resume_remove_later_dumps(tmp_path: Path) -> None:
    logging = LoggingConfig(tensorboard=False, plots=False, rollout_dump_every=10)
    with Tracker.from_config(logging, RunDirectory.create(tmp_path)) as tracker:
        assert [s for s in range(1, 31) if tracker.wants_rollouts(s)] == [10, 20, 30]
        for step in (10, 20, 30):
            tracker.log(step, {"v": step})
            tracker.dump_rollouts(step, RECORDS)
        tracker.truncate_after(20)
        assert tracker.run.rollout_steps() == [10, 20]
        assert read_rollouts(tracker.run.rollout_path(20)) == RECORDS
    never = Tracker(tmp_path / "never", tensorboard=False, plots=False, rollout_dump_every=0)
    assert not any(never.wants_rollouts(s) for s in range(5))
    never.close()
