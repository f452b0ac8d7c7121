"""summary.json and the final table."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from rich.console import Console

from reasonrl.tracking import summary_table, write_summary

SUMMARY = {
    "accuracy/before": 0.125,
    "accuracy/after": 0.5,
    "wall_seconds": 93.21,
    "steps": 40,
    "samples_per_s": 27.5,
    "eval": {"pass@4": math.nan},
    "run_dir": "runs/20250101-120000",
}


def test_write_summary(tmp_path: Path) -> None:
    path = write_summary(tmp_path, SUMMARY)
    assert path == tmp_path / "summary.json"
    assert json.loads(path.read_text()) == {**SUMMARY, "eval": {"pass@4": None}}


def test_summary_table_pairs_before_and_after() -> None:
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(summary_table(SUMMARY))
    rows = {
        cells[0]: cells[1]
        for line in out.getvalue().splitlines()
        if len(cells := [c.strip() for c in line.strip("│ ").split("│")]) == 2
    }
    assert rows == {
        "accuracy": "0.125 → 0.5 (+0.375)",
        "wall_seconds": "93.21",
        "steps": "40",
        "samples_per_s": "27.5",
        "eval/pass@4": "nan",
        "run_dir": "runs/20250101-120000",
    }
