"""Registries: registration, lookup errors, and agreement with the config's choices."""

from __future__ import annotations

from typing import get_args

import pytest

from reasonrl.algorithms import ADVANTAGES, AGGREGATION_MODES, KL_ESTIMATORS, POLICY_LOSSES, Registry
from reasonrl.config.schema import AlgorithmConfig


def test_register_and_get() -> None:
    registry: Registry = Registry("widget")

    @registry.register("blue")
    def blue() -> str:
        return "blue"

    assert registry.get("blue") is blue
    assert "blue" in registry and "red" not in registry
    assert registry.names() == ("blue",)


def test_duplicate_and_unknown_names_are_errors() -> None:
    registry: Registry = Registry("widget")
    registry.register("blue")(lambda: None)
    registry.register("green")(lambda: None)
    with pytest.raises(ValueError, match="widget 'blue' is already registered"):
        registry.register("blue")(lambda: None)
    with pytest.raises(ValueError, match="unknown widget 'red'; choose one of: blue, green"):
        registry.get("red")


def test_registered_names() -> None:
    assert ADVANTAGES.names() == ("grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "gae")
    assert POLICY_LOSSES.names() == ("ppo", "gppo", "gspo", "gspo_token", "cispo")
    assert KL_ESTIMATORS.names() == ("k1", "k2", "k3")


def _choices(field: str) -> set[str]:
    return set(get_args(AlgorithmConfig.model_fields[field].annotation))


def test_every_config_choice_has_an_implementation() -> None:
    assert _choices("advantage") <= set(ADVANTAGES.names())
    assert _choices("kl_estimator") <= set(KL_ESTIMATORS.names())
    assert _choices("loss_aggregation") <= set(AGGREGATION_MODES)
