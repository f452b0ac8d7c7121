"""`rollout.placement`: where the rollout engine runs; combinations that cannot work fail at load time."""

from __future__ import annotations

import pytest

from reasonrl.config import dump_config, load_config
from reasonrl.config.errors import ConfigError


def test_placement_defaults_to_auto_and_round_trips(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert load_config(None, []).rollout.placement == "auto"
    config = load_config(None, ["pipeline=async", "rollout.placement=process"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    assert load_config(path, []).rollout.placement == "process"
    assert load_config(None, ["rollout.placement=thread"]).rollout.placement == "thread"  # sync on a weight copy


def test_a_misspelt_placement_names_the_allowed_values() -> None:
    with pytest.raises(ConfigError, match=r"'proces' \(did you mean 'process'\?\); allowed: 'auto', 'colocated'"):
        load_config(None, ["rollout.placement=proces"])


def test_colocated_generation_in_async_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="the producer would sample from weights the learner is changing mid-call"):
        load_config(None, ["pipeline=async", "rollout.placement=colocated"])


def test_vllm_on_a_thread_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"Set placement: process \(or auto\), or engine: hf"):
        load_config(None, ["rollout.engine=vllm", "rollout.placement=thread"])


def test_a_plugin_engine_runs_only_colocated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plugin = tmp_path / "my_engine.py"
    plugin.write_text("def my_engine(*, model, tokenizer, seed):\n    raise NotImplementedError\n")
    engine = f"rollout.engine={plugin}:my_engine"
    assert load_config(None, [engine]).rollout.engine == f"{plugin}:my_engine"
    with pytest.raises(ConfigError, match="starts the hf or vllm engine in a worker process, not your engine"):
        load_config(None, [engine, "rollout.placement=process"])
    with pytest.raises(ConfigError, match="pipeline: async generates on its own copy of the weights"):
        load_config(None, [engine, "pipeline=async"])
