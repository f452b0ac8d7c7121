"""`pipeline: async` rules: the loss corrects for stale samples by default, and unsupported pairings fail early."""

from __future__ import annotations

import pytest

from reasonrl.config import dump_config, load_config
from reasonrl.config.errors import ConfigError


def test_async_defaults_to_the_decoupled_objective_and_a_staleness_of_one() -> None:
    config = load_config(None, ["pipeline=async"])
    assert (config.algorithm.correction, config.async_training.max_staleness) == ("decoupled", 1)
    assert load_config(None, ["pipeline=async", "algorithm.correction=icepop"]).algorithm.correction == "icepop"
    assert load_config(None, []).algorithm.correction == "none"  # sync keeps its own default


def test_the_resolved_async_config_loads_back_unchanged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = load_config(None, ["pipeline=async", "async_training.max_staleness=3"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    assert load_config(path, []) == config


def test_an_explicit_uncorrected_loss_in_async_mode_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"algorithm\.correction is 'none', which ignores the gap"):
        load_config(None, ["pipeline=async", "algorithm.correction=none"])


def test_async_settings_without_async_mode_are_an_error() -> None:
    with pytest.raises(ConfigError, match="async_training differs from its defaults but pipeline is 'sync'"):
        load_config(None, ["async_training.max_staleness=2"])


@pytest.mark.parametrize(
    ("setting", "message"),
    [("rollout.engine=vllm", "vLLM is not supported there yet"), ("algorithm.dynamic_sampling=true", "dynamic")],
)
def test_async_pairings_not_built_yet_fail_before_the_run(setting: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, ["pipeline=async", setting])


def test_a_negative_staleness_bound_is_an_error() -> None:
    with pytest.raises(ConfigError, match="max_staleness"):
        load_config(None, ["pipeline=async", "async_training.max_staleness=-1"])
