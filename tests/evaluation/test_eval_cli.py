"""`reasonrl eval` end to end on the tiny model: generate, store, re-score, compare, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reasonrl.cli.app import app

runner = CliRunner()
pytestmark = pytest.mark.slow


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("eval") / "a"
    result = invoke(
        "eval", "builtin:tiny", "--data", "sum?size=20", "--n", "4", "--max-new-tokens", "4",
        "--template", "plain", "--out", str(out),
        "--strategy", "majority", "--strategy", "best_of_majority?alpha=0.5",
        "--strategy", "particle_filter?step_tokens=2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "pass@4" in result.output and "maj@4" in result.output
    return out


def test_eval_writes_samples_report_and_plot(evaluation: Path) -> None:
    assert {p.name for p in evaluation.iterdir()} >= {
        "samples.jsonl", "particles.jsonl", "report.json", "report.md", "accuracy_vs_n.png"
    }  # fmt: skip
    rows = [json.loads(line) for line in (evaluation / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 80
    row = rows[0]
    assert len(row["response_ids"]) == len(row["logprobs"]) > 0 and row["prompt_ids"]
    assert {"answer", "answer_class", "verifier_score", "scores"} <= set(row)
    assert 0 < row["scores"]["logprob"] <= 1
    report = json.loads((evaluation / "report.json").read_text())
    assert report["problems"] == 20 and report["samples_per_problem"] == 4
    labels = [c["label"] for c in report["curves"]]
    assert labels == [
        "oracle_best_of_n (pass@N)",
        "majority",
        "best_of_majority(alpha=0.5, k=1)",
        "particle_filter(step_tokens=2)",
    ]
    tokens = {c["label"]: c["extra_tokens_per_problem"] for c in report["curves"]}
    assert tokens["majority"] is None and tokens["particle_filter(step_tokens=2)"] > 0
    assert "## Extra generated tokens" in (evaluation / "report.md").read_text()
    assert all([p["n"] for p in c["points"]] == [1, 2, 4] for c in report["curves"])
    assert set(report["metrics"]["pass@k"]) == {"1", "2", "4"}
    assert report["timings"]["samples_per_second"] > 0


def test_samples_are_rescored_without_generating(evaluation: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (evaluation / "samples.jsonl").read_text().splitlines()]
    for row in rows:  # make the first response to every problem right, the others empty
        row["response"] = str(row["prompt"]["answer"]) if row["index"] == 0 else ""
    stored = tmp_path / "edited.jsonl"
    stored.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = invoke("eval", "--samples", str(stored), "--out", str(tmp_path / "b"), "--strategy", "best_of_n")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["mean_accuracy"] == pytest.approx(0.25)
    assert report["metrics"]["pass@k"] == {"1": pytest.approx(0.25), "2": pytest.approx(0.5), "4": 1.0}
    assert report["metrics"]["maj@k"]["4"] == 1.0  # the empty responses have no answer and do not vote

    compared = invoke("eval", "--compare", str(evaluation), str(tmp_path / "b"), "--out", str(tmp_path / "c"))
    assert compared.exit_code == 0, compared.output
    assert "| pass@4 |" in (tmp_path / "c" / "compare.md").read_text()
    assert (tmp_path / "c" / "accuracy_vs_n.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--samples", "no/such/samples.jsonl"], "no such file"),
        (["builtin:tiny", "--data", "sum?size=2", "--strategy", "best_of_nn"], "did you mean 'best_of_n'"),
        (
            ["builtin:tiny", "--data", "sum?size=2", "--strategy", "best_of_n?scorer=rm:no/such/folder"],
            "no config.json",
        ),
        (["builtin:tiny"], "give MODEL and --data SPEC"),
        (["--compare", "no/such/a", "no/such/b"], "no report.json"),
    ],
)
def test_bad_input_is_one_clear_message(args: list[str], message: str) -> None:
    result = invoke("eval", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_malformed_samples_line_names_file_and_line(tmp_path: Path) -> None:
    stored = tmp_path / "bad.jsonl"
    stored.write_text('{"problem_id": "x"}\n')
    result = invoke("eval", "--samples", str(stored))
    assert result.exit_code == 2 and f"{stored}:1" in result.output
