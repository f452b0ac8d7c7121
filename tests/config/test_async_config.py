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


def test_async_with_vllm_and_partial_rollouts_loads() -> None:
    config = load_config(None, ["pipeline=async", "rollout.engine=vllm", "async_training.partial_rollouts=true"])
    assert (config.rollout.engine, config.async_training.partial_rollouts) == ("vllm", True)


def test_partial_and_selective_rollouts_load_and_their_knobs_need_them() -> None:
    config = load_config(
        None,
        [
            "pipeline=async",
            "async_training.partial_rollouts=true",
            "async_training.overprovision=3",
            "rollout.selective_rollouts=true",
            "algorithm.dynamic_sampling=true",
        ],
    )
    assert (config.async_training.overprovision, config.algorithm.dynamic_sampling) == (3.0, True)
    with pytest.raises(ConfigError, match=r"max_staleness: 0 forbids\. Set max_staleness >= 1"):
        load_config(None, ["pipeline=async", "async_training.partial_rollouts=true", "async_training.max_staleness=0"])
    with pytest.raises(ConfigError, match="overprovision acts only with partial_rollouts"):
        load_config(None, ["pipeline=async", "async_training.overprovision=3"])
    with pytest.raises(ConfigError, match="target_zero_variance acts only with selective_rollouts"):
        load_config(None, ["pipeline=async", "rollout.target_zero_variance=0.5"])
    with pytest.raises(ConfigError, match="overprovision"):
        load_config(
            None, ["pipeline=async", "async_training.partial_rollouts=true", "async_training.overprovision=0.5"]
        )


def test_every_sampling_feature_but_partial_rollouts_works_in_the_sync_pipeline() -> None:
    config = load_config(
        None, ["rollout.selective_rollouts=true", "rollout.target_zero_variance=0.5", "algorithm.dynamic_sampling=true"]
    )
    assert (config.pipeline, config.rollout.selective_rollouts, config.rollout.target_zero_variance) == (
        "sync",
        True,
        0.5,
    )
    with pytest.raises(ConfigError, match="target_zero_variance acts only with selective_rollouts"):
        load_config(None, ["rollout.target_zero_variance=0.5"])
    # Partial rollouts continue responses under newer weights; a synchronous step (staleness 0) has none.
    with pytest.raises(
        ConfigError, match=r"partial_rollouts continues responses under newer weights, which a synchronous"
    ):
        load_config(None, ["async_training.partial_rollouts=true"])


@pytest.mark.parametrize("key", ["selective_rollouts=true", "target_zero_variance=0.5"])
def test_the_greso_keys_moved_from_async_training_to_rollout(key: str) -> None:
    name = key.partition("=")[0]
    with pytest.raises(ConfigError, match=rf"'async_training\.{name}' was renamed to 'rollout\.{name}'"):
        load_config(None, ["pipeline=async", f"async_training.{key}"])


def test_a_negative_staleness_bound_is_an_error() -> None:
    with pytest.raises(ConfigError, match="max_staleness"):
        load_config(None, ["pipeline=async", "async_training.max_staleness=-1"])
