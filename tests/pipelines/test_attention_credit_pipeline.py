"""End to end on the tiny model: attention-guided credit assignment in the sync pipeline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from reasonrl.config import load_config
from reasonrl.pipelines.sync import train
from reasonrl.tracking import read_metrics

from .conftest import QUICK

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("strategy", ["coupled", "preplan"])
def test_attention_credit_trains_and_dumps_its_weights(tmp_path: Path, strategy: str) -> None:
    run_dir = tmp_path / "run"
    overrides = [
        f"logging.run_dir={run_dir}",
        "algorithm.attention_credit.enabled=true",
        f"algorithm.attention_credit.strategy={strategy}",
        # the tiny task's responses are a few tokens long: a short FAI window lets anchors exist at all
        "algorithm.attention_credit.future_near=1",
        "algorithm.attention_credit.future_far=4",
        "train.steps=3",
        "logging.rollout_dump_every=1",
    ]
    assert train(load_config(None, [*QUICK, *overrides]))["steps"] == 3
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward/mean" in r]
    assert len(rows) == 3
    for row in rows:
        assert all(math.isfinite(v) for v in row.values() if isinstance(v, float))
        assert row["credit/amplified_share"] > 0 and row["credit/weight_mean"] > 1
        assert row["time/attention"] > 0
    records = [json.loads(line) for line in (run_dir / "rollouts" / "step_000003.jsonl").read_text().splitlines()]
    for record in records:
        weights = record["credit_weights"]
        assert len(weights) == len(record["response_ids"])
        assert all(1.0 <= w <= 1.5 for w in weights)
    assert any(w > 1.0 for record in records for w in record["credit_weights"])
