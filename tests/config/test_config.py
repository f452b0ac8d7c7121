"""Config: defaults, YAML + overrides, strict errors that name the field and the fix, docs freshness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonrl.config import ConfigError, RunConfig, dump_config, load_config
from reasonrl.config.docs import config_json_schema, config_markdown

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_defaults_validate_and_round_trip(tmp_path: Path) -> None:
    config = load_config()
    assert config == RunConfig()
    assert config.rollout.group_size == 8 and config.data.train.source == "sum"
    again = load_config(write(tmp_path, dump_config(config)))
    assert again == config


def test_yaml_then_overrides_with_type_coercion(tmp_path: Path) -> None:
    path = write(tmp_path, "rollout:\n  group_size: 4\n  batch_size: 16\ntrain:\n  lr: 0.001\n")
    config = load_config(
        path,
        [
            "rollout.group_size=2",
            "algorithm.clip_high=0.28",
            "rollout.stop=[\"\\n\\n\", '###']",
            "logging.tensorboard=false",
            "train.adam_betas=[0.9, 0.95]",
        ],
    )
    assert config.rollout.group_size == 2 and config.rollout.batch_size == 16
    assert config.algorithm.clip_high == 0.28
    assert config.rollout.stop == ["\n\n", "###"]
    assert config.logging.tensorboard is False
    assert config.train.lr == 0.001 and config.train.adam_betas == (0.9, 0.95)


def test_data_source_spec_string_in_override() -> None:
    config = load_config(None, ["data.train=gsm8k:data/test.jsonl?size=200&skip_invalid=true&fields.answer=sol"])
    source = config.data.train
    assert (source.kind, source.source, source.size, source.skip_invalid) == (
        "gsm8k",
        "data/test.jsonl",
        200,
        True,
    )
    assert source.fields.answer == "sol"
    task = load_config(None, ["data.eval=chain_sum?num_terms=3&seed=7"]).data.eval
    assert task is not None
    assert (task.kind, task.source, task.seed, task.options) == ("auto", "chain_sum", 7, {"num_terms": 3})


def test_unknown_key_names_path_and_closest_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "rollout:\n  gruop_size: 4\n"))
    message = str(caught.value)
    assert "run.yaml" in message
    assert "unknown key 'rollout.gruop_size' (did you mean 'group_size'?)" in message
    assert "valid keys under rollout: batch_size, engine, engine_options, environment, group_size" in message


def test_unknown_section_and_override_typo() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'algorithem' \(did you mean 'algorithm'\?\)"):
        load_config(None, ["algorithem.clip_high=0.3"])
    with pytest.raises(ConfigError, match=r"unknown key 'algorithm.clip_hihg' \(did you mean 'clip_high'\?\)"):
        load_config(None, ["algorithm.clip_hihg=0.3"])


def test_wrong_type_names_field_value_and_meaning(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "train:\n  steps: abc\n"))
    message = str(caught.value)
    assert "invalid value for 'train.steps': 'abc'" in message
    assert "valid integer" in message and "RL steps" in message


def test_out_of_range_and_literal_values_list_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match=r"'rollout.temperature': -1: Input should be greater than or equal to 0"):
        load_config(None, ["rollout.temperature=-1"])
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["rollout.engine=vlm"])
    assert (
        "invalid value for 'rollout.engine': 'vlm': unknown rollout engine 'vlm' (did you mean 'vllm'?); choose one "
        "of: hf, vllm, or your own as 'package.module:name' or 'path/to/file.py:name'"
    ) in str(caught.value)


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "rollout:\n  top_p: 2\n  top_k: -1\nmodel:\n  dtyp: float32\n"))
    lines = [line for line in str(caught.value).splitlines() if line.startswith("  - ")]
    assert len(lines) == 3


def test_cross_field_rules_explain_the_relationship() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["rollout.batch_size=60"])
    message = str(caught.value)
    assert "rollout.batch_size (60) must be a multiple of rollout.group_size (8)" in message
    assert "Use batch_size 56 or 64" in message
    with pytest.raises(ConfigError, match=r"train.mini_batches \(3\) must divide .* = 8\)"):
        load_config(None, ["train.mini_batches=3"])
    with pytest.raises(ConfigError, match=r"kl_in_reward is true but algorithm\.kl_coef is 0"):
        load_config(None, ["algorithm.kl_in_reward=true"])


def test_reward_names_are_validated_with_suggestions() -> None:
    with pytest.raises(ConfigError, match=r"unknown verifier 'mth' \(did you mean 'math'\?\)"):
        load_config(None, ["algorithm.reward.functions=[{name: mth, weight: 1}]"])
    with pytest.raises(ConfigError, match=r"unknown verifier 'exct'"):
        load_config(None, ["data.train.reward=exct"])


def test_plain_template_must_show_the_question() -> None:
    with pytest.raises(ConfigError, match=r"plain_template must contain \{question\}"):
        load_config(None, ["data.format.plain_template=Answer"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rollout.group_size", "not of the form dotted.key=value"),
        ("=3", "not of the form dotted.key=value"),
        ("rollout.stop=[unclosed", "not valid YAML"),
        ("model.path.inner=1", "'model.path': a mapping: Input should be a valid string"),
    ],
)
def test_malformed_overrides(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(None, [text])


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="must hold a mapping of sections, not list"):
        load_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="not valid YAML at line 3, column 1"):
        load_config(write(tmp_path, "rollout:\n  stop: [a\n"))


def test_every_field_is_documented_and_docs_are_fresh() -> None:
    committed = (ROOT / "docs" / "config.md").read_text()
    assert committed == config_markdown(), "docs/config.md is stale: run `make docs`"
    schema = json.loads(config_json_schema())
    assert schema["title"] == "RunConfig"
    assert set(schema["properties"]) == {
        "pipeline", "async_training", "model", "data", "rollout", "algorithm", "train", "eval", "logging",
        "checkpoint", "backend", "distributed",
    }  # fmt: skip


def test_undocumented_field_is_refused_at_class_creation() -> None:
    from reasonrl.config.base import Section

    with pytest.raises(TypeError, match=r"without a description: \['x'\]"):

        class Broken(Section):
            x: int = 1
