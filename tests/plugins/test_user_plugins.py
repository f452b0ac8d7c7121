"""A user extends reasonrl from one file of their own: a loss, an advantage estimator, a verifier and a
test-time strategy selected from YAML by file path, trained and evaluated on the tiny model, each shown used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.pipelines.conftest import QUICK
from typer.testing import CliRunner

from reasonrl.cli.app import app
from reasonrl.config import ConfigError, load_config
from reasonrl.pipelines.sync import train
from reasonrl.tracking import read_metrics

PLUGINS = Path(__file__).with_name("user_plugins.py")
pytestmark = pytest.mark.slow


def user_config(tmp_path: Path) -> Path:
    config = {
        "algorithm": {
            "advantage": f"{PLUGINS}:constant_advantage",
            "advantage_options": {"value": 0.5},
            "policy_loss": f"{PLUGINS}:reinforce_loss",
            "policy_loss_options": {"weight": 2.0},
            "reward": {"functions": [{"name": f"{PLUGINS}:half_credit", "options": {"credit": 0.25}}]},
        }
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_users_loss_estimator_verifier_and_strategy_train_and_evaluate(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = load_config(user_config(tmp_path), [*QUICK, f"logging.run_dir={run_dir}"])
    train(config)
    rows = [row for row in read_metrics(run_dir / "metrics.jsonl") if "advantage/mean" in row]
    assert len(rows) == 4
    for row in rows:
        assert row["policy/reinforce_weight"] == pytest.approx(2.0)  # the loss's own metric
        assert row["advantage/mean"] == pytest.approx(0.5)  # the estimator's constant
        assert row["reward/mean"] >= 0.25  # nothing scores below the verifier's credit
    assert "policy/clip_frac_high" not in rows[0]  # PPO never ran

    # Evaluate a stored set whose first response is always right with the user's strategy.
    runner = CliRunner()
    first = tmp_path / "eval"
    result = runner.invoke(
        app,
        ["eval", "builtin:tiny", "--data", "sum?size=6", "--n", "4", "--max-new-tokens", "3",
         "--template", "plain", "--out", str(first), "--strategy", "majority"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    samples = [json.loads(line) for line in (first / "samples.jsonl").read_text().splitlines()]
    for row in samples:
        row["response"] = str(row["prompt"]["answer"]) if row["index"] == 0 else ""
    stored = tmp_path / "edited.jsonl"
    stored.write_text("".join(json.dumps(row) + "\n" for row in samples))
    strategy = f"{PLUGINS}:unanswered?fallback=0"
    out = tmp_path / "rescored"
    result = runner.invoke(
        app, ["eval", "--samples", str(stored), "--out", str(out), "--strategy", "majority", "--strategy", strategy]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    curve = next(c for c in report["curves"] if c["label"].startswith(str(PLUGINS)))
    # Any subset of 2 or 4 holds an empty response, which it picks: accuracy 0 where majority gets pass@N.
    assert [p["accuracy"] for p in curve["points"]][1:] == [0.0, 0.0]
    majority = next(c for c in report["curves"] if c["label"] == "majority")
    assert majority["points"][-1]["accuracy"] == 1.0
    assert report["mean_accuracy"] == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (f"algorithm.policy_loss={PLUGINS}:reinforce_los", "has no function 'reinforce_los'"),
        ("algorithm.policy_loss_options={wieght: 1.0}", r"has no option 'wieght' \(did you mean 'weight'\?\)"),
        ("algorithm.policy_loss_options={weight: heavy}", "option 'weight' = 'heavy' is invalid"),
        ("algorithm.advantage_options={}", r"needs option\(s\) \['value'\]"),
        ("algorithm.clip_high=0.28", "policy loss '.*reinforce_loss' takes no clip_high, so it would do nothing"),
    ],
)
def test_a_plug_in_with_a_wrong_option_fails_before_the_run(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(user_config(tmp_path), [*QUICK, override])
