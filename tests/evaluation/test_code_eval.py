"""`reasonrl eval` on HumanEval: the tiny model's samples are generated, sandboxed and reported, the isolation is
recorded beside the report, and stored samples re-scored with canonical solutions count exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reasonrl.cli.app import app

runner = CliRunner()
pytestmark = pytest.mark.slow


def test_reasonrl_eval_runs_humaneval_in_the_sandbox(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "humaneval"
    result = runner.invoke(
        app,
        ["eval", "builtin:tiny", "--data", "humaneval?size=3", "--n", "2", "--max-new-tokens", "8", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    sandbox = json.loads((out / "sandbox.json").read_text())
    assert sandbox["backend"] == "bwrap" and sandbox["description"].startswith("bubblewrap")
    report = json.loads((out / "report.json").read_text())
    assert report["problems"] == 3 and report["samples_per_problem"] == 2 and report["excluded_samples"] == 0
    assert report["mean_accuracy"] == 0.0  # a 0.8M-parameter model writes no working Python

    # The same samples with canonical solutions in place of the first sample of two problems.
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [row["problem_id"] for row in rows[::2]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    for row in rows[0:1] + rows[4:5]:
        row["response"] = row["prompt"]["meta"]["target"]
    stored = tmp_path / "canonical.jsonl"
    stored.write_text("".join(json.dumps(row) + "\n" for row in rows))
    rescored = tmp_path / "rescored"
    result = runner.invoke(app, ["eval", "--samples", str(stored), "--out", str(rescored)])
    assert result.exit_code == 0, result.output
    report = json.loads((rescored / "report.json").read_text())
    assert report["mean_accuracy"] == pytest.approx(2 / 6)
    assert report["metrics"]["pass@k"]["2"] == pytest.approx(2 / 3)
    assert (rescored / "sandbox.json").is_file()
