"""Cross-field rules of the algorithm section: a critic only with an estimator that uses one."""

from __future__ import annotations

import pytest

from reasonrl.config import load_config
from reasonrl.config.errors import ConfigError


def test_critic_settings_without_gae_are_an_error() -> None:
    with pytest.raises(
        ConfigError, match=r"algorithm\.critic differs from its defaults but algorithm\.advantage is 'grpo'"
    ):
        load_config(None, ["algorithm.critic.lr=0.001"])
    assert load_config(None, ["algorithm.advantage=gae", "algorithm.critic.lr=0.001"]).algorithm.critic.lr == 0.001


def test_critic_only_steps_as_long_as_the_run_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"critic_only_steps \(5\) >= train.steps \(5\)"):
        load_config(None, ["algorithm.advantage=gae", "algorithm.critic.critic_only_steps=5", "train.steps=5"])


def test_dynamic_sampling_budget_is_validated() -> None:
    with pytest.raises(ConfigError, match="dynamic_sampling_max_extra_prompts"):
        load_config(None, ["algorithm.dynamic_sampling_max_extra_prompts=-1"])


def test_asyppo_knobs_need_an_ensemble_that_fits_the_group() -> None:
    with pytest.raises(ConfigError, match=r"critic\.count \(3\) > rollout\.group_size \(2\)"):
        load_config(None, ["algorithm.advantage=gae", "algorithm.critic.count=3", "rollout.group_size=2"])
    with pytest.raises(ConfigError, match="act only on an AsyPPO ensemble"):
        load_config(None, ["algorithm.advantage=gae", "algorithm.critic.advantage_mask_low=0.1"])
    config = load_config(None, ["algorithm.advantage=gae", "algorithm.critic.count=2"])
    assert (config.algorithm.critic.advantage_mask_low, config.algorithm.critic.entropy_mask_high) == (0.2, 0.2)


def test_decoupled_cap_loads_only_with_the_decoupled_correction() -> None:
    config = load_config(None, ["algorithm.correction=decoupled", "algorithm.decoupled_cap=5.0"])
    assert config.algorithm.decoupled_cap == 5.0
    assert load_config(None, []).algorithm.decoupled_cap is None  # off by default
    # async mode makes decoupled the default correction, so the cap alone is enough there
    assert load_config(None, ["pipeline=async", "algorithm.decoupled_cap=5.0"]).algorithm.correction == "decoupled"
    with pytest.raises(
        ConfigError, match=r"decoupled_cap is set but behaviour correction 'none' takes no decoupled_cap"
    ):
        load_config(None, ["algorithm.decoupled_cap=5.0"])
    with pytest.raises(ConfigError, match=r"correction 'icepop' takes no decoupled_cap.*declares it \(decoupled\)"):
        load_config(None, ["pipeline=async", "algorithm.correction=icepop", "algorithm.decoupled_cap=5.0"])
    with pytest.raises(ConfigError, match="decoupled_cap"):
        load_config(None, ["algorithm.correction=decoupled", "algorithm.decoupled_cap=1.0"])  # must be > 1
