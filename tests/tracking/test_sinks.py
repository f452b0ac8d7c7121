"""Optional sinks: TensorBoard events, warnings and errors for missing packages, W&B / MLflow wiring."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from reasonrl.tracking import MissingPackageError, RunDirectory, Tracker, read_metrics, tensorboard_sink


def scalars(log_dir: Path, name: str) -> list[tuple[int, float]]:
    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    return [(event.step, event.value) for event in accumulator.Scalars(name)]


def test_tensorboard_events_hold_the_logged_scalars(tmp_path: Path) -> None:
    with Tracker(tmp_path, plots=False) as tracker:
        tracker.log(1, {"reward/mean": 0.25, "time/generate": 2.0})
        tracker.log(2, {"reward/mean": 0.5})
    assert scalars(tmp_path / "tensorboard", "reward/mean") == [(1, 0.25), (2, 0.5)]
    assert scalars(tmp_path / "tensorboard", "time/generate") == [(1, 2.0)]


def test_tensorboard_hides_steps_dropped_on_resume(tmp_path: Path) -> None:
    with Tracker(tmp_path, plots=False) as tracker:
        for step in (1, 2, 3):
            tracker.log(step, {"v": float(step)})
        tracker.truncate_after(1)
        tracker.log(2, {"v": 20.0})
    assert scalars(tmp_path / "tensorboard", "v") == [(1, 1.0), (2, 20.0)]


def test_missing_tensorboard_warns_once_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    monkeypatch.setattr(tensorboard_sink, "_warned_missing", False)
    with caplog.at_level(logging.WARNING, logger=tensorboard_sink.__name__):
        for name in ("a", "b"):
            with Tracker(tmp_path / name, plots=False) as tracker:
                tracker.log(1, {"v": 1.0})
    warnings = [r for r in caplog.records if "TensorBoard cannot be imported" in r.getMessage()]
    assert len(warnings) == 1
    assert "pip install tensorboard" in warnings[0].getMessage()
    assert read_metrics(tmp_path / "a" / "metrics.jsonl") == [{"step": 1, "v": 1.0}]
    assert not (tmp_path / "a" / "tensorboard").exists()


@pytest.mark.parametrize("flag", ["wandb", "mlflow"])
def test_enabled_remote_sink_without_its_package_is_a_clear_error(
    flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, flag, None)
    expected = rf"logging\.{flag} is true.*pip install {flag}.*{flag}: false"
    with pytest.raises(MissingPackageError, match=expected):
        Tracker(tmp_path, tensorboard=False, **{flag: True})


class FakeWandbRun:
    def __init__(self, calls: list[tuple[str, Any]]) -> None:
        self.calls = calls
        self.summary: dict[str, Any] = {}

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self.calls.append(("log", step, metrics))

    def finish(self) -> None:
        self.calls.append(("finish",))


def fake_wandb(calls: list[tuple[str, Any]], run: FakeWandbRun, ids: list[str]) -> SimpleNamespace:
    def init(**kwargs: Any) -> FakeWandbRun:
        calls.append(("init", kwargs))
        return run

    return SimpleNamespace(init=init, util=SimpleNamespace(generate_id=ids.pop))


def test_wandb_logs_each_step_and_resumes_the_same_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    wandb_run = FakeWandbRun(calls)
    monkeypatch.setitem(sys.modules, "wandb", fake_wandb(calls, wandb_run, ids=["id2", "id1"]))
    run = RunDirectory.create(tmp_path / "r", config_text="train:\n  steps: 3\n")
    with Tracker(run, tensorboard=False, plots=False, wandb=True, project="demo") as tracker:
        tracker.log(1, {"reward/mean": 0.5})
        tracker.write_summary({"accuracy/after": 0.75})
    init = calls[0][1]
    assert init["project"] == "demo" and init["name"] == "r" and init["id"] == "id1"
    assert init["config"] == {"train": {"steps": 3}}
    assert calls[1:] == [("log", 1, {"reward/mean": 0.5}), ("finish",)]
    assert wandb_run.summary == {"accuracy/after": 0.75}
    Tracker(run, tensorboard=False, plots=False, wandb=True).close()
    assert calls[-2][1]["id"] == "id1" and calls[-2][1]["resume"] == "allow"


def test_mlflow_logs_allowed_names_and_resumes_the_same_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []

    def start_run(**kwargs: Any) -> SimpleNamespace:
        calls.append(("start_run", kwargs))
        return SimpleNamespace(info=SimpleNamespace(run_id="abc"))

    mlflow = SimpleNamespace(
        set_experiment=lambda name: calls.append(("set_experiment", name)),
        start_run=start_run,
        log_artifact=lambda path: calls.append(("log_artifact", Path(path).name)),
        log_metrics=lambda metrics, step: calls.append(("log_metrics", step, metrics)),
        log_dict=lambda data, name: calls.append(("log_dict", name, data)),
        end_run=lambda: calls.append(("end_run",)),
    )
    monkeypatch.setitem(sys.modules, "mlflow", mlflow)
    run = RunDirectory.create(tmp_path / "r", config_text="a: 1\n")
    with Tracker(run, tensorboard=False, plots=False, mlflow=True, project="demo") as tracker:
        tracker.log(2, {"eval/pass@8": 0.5, "reward/mean": 1.0})
        tracker.write_summary({"steps": 2})
    assert calls == [
        ("set_experiment", "demo"),
        ("start_run", {"run_name": "r"}),
        ("log_artifact", "config.yaml"),
        ("log_metrics", 2, {"eval/pass_8": 0.5, "reward/mean": 1.0}),
        ("log_dict", "summary.json", {"steps": 2}),
        ("end_run",),
    ]
    # metrics.jsonl keeps the name as given; only MLflow sees the replacement.
    assert read_metrics(run.metrics_path)[0]["eval/pass@8"] == 0.5
    Tracker(run, tensorboard=False, plots=False, mlflow=True).close()
    assert ("start_run", {"run_id": "abc"}) in calls
