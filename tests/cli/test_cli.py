"""The `reasonrl` command: each subcommand's output, and user mistakes as one clear message with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from reasonrl.cli.app import app
from reasonrl.config import RunConfig

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "sft", "tasks", "config", "init-model", "data"):
        assert command in result.output


def test_tasks_lists_presets_with_examples_and_gym_generators() -> None:
    result = invoke("tasks", "--no-gym")
    assert result.exit_code == 0, result.output
    assert "sum" in result.output and "add2" in result.output
    every = invoke("tasks")
    assert every.exit_code == 0 and "chain_sum" in every.output and "countdown" in every.output


def test_config_show_resolves_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("rollout:\n  group_size: 4\n")
    result = invoke("config", "show", str(path), "--set", "rollout.batch_size=32", "-s", "train.lr=0.001")
    assert result.exit_code == 0, result.output
    resolved = RunConfig.model_validate(yaml.safe_load(result.output))
    assert (resolved.rollout.group_size, resolved.rollout.batch_size, resolved.train.lr) == (4, 32, 0.001)


def test_config_typo_is_one_clear_message_and_exit_code_2(tmp_path: Path) -> None:
    result = invoke("config", "show", "--set", "rollout.gruop_size=4")
    assert result.exit_code == 2
    assert "did you mean 'group_size'?" in result.output
    assert "Traceback" not in result.output


def test_config_schema_and_docs() -> None:
    schema = json.loads(invoke("config", "schema").output)
    assert "rollout" in schema["properties"]
    assert invoke("config", "docs").output.startswith("# Configuration reference")


def test_init_model_writes_a_loadable_folder(tmp_path: Path) -> None:
    result = invoke("init-model", str(tmp_path / "m"), "--preset", "tiny", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "parameters" in result.output
    AutoModelForCausalLM.from_pretrained(tmp_path / "m", local_files_only=True)
    AutoTokenizer.from_pretrained(tmp_path / "m", local_files_only=True)
    bad = invoke("init-model", str(tmp_path / "x"), "--preset", "huge")
    assert bad.exit_code == 2 and "choose one of" in bad.output


def test_data_preview_renders_through_the_chat_template(tmp_path: Path) -> None:
    result = invoke("data", "preview", "sum", "-n", "2")
    assert result.exit_code == 0, result.output
    assert "<|im_start|>user" in result.output and "answer=" in result.output
    plain = invoke("data", "preview", "sum", "-n", "1", "--set", "data.format.template=plain")
    assert "<|im_start|>" not in plain.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("data", "preview", "missing/file.jsonl"), "no such file or directory"),
        (("data", "preview", "chain_sun"), "chain_sum"),
        (("train", "--resume", "/nonexistent/run"), "no config.yaml there"),
        (("train", "/nonexistent/run.yaml"), "does not exist"),
    ],
)
def test_user_mistakes_exit_2_with_the_fix(args: tuple[str, ...], expected: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert expected in result.output
