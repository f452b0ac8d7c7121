"""Registries: registration, lookup errors, user plug-ins by reference, and options bound to a signature."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonrl.algorithms import ADVANTAGES, CORRECTIONS, KL_ESTIMATORS, LOSS_AGGREGATIONS, POLICY_LOSSES
from reasonrl.plugins import FAMILIES, Registry, registry


def widgets() -> Registry:
    registry: Registry = Registry("widget", call="fn(x, *, <options>)", context=("size",))

    @registry.register("blue")
    def blue(x: int, *, shade: float = 0.5, label: str, size: int = 1) -> str:
        return f"blue {x} {shade} {label} {size}"

    registry.register_lazy("joined", "os.path:join")
    return registry


def test_register_get_and_lazy_entries() -> None:
    registry = widgets()
    assert registry.names() == ("blue", "joined")
    assert "blue" in registry and "red" not in registry
    assert registry.get("joined")("a", "b") == "a/b"  # imported on first use


def test_duplicate_and_unknown_names_are_errors() -> None:
    registry = widgets()
    with pytest.raises(ValueError, match="widget 'blue' is already registered"):
        registry.register("blue")(lambda: None)
    with pytest.raises(ValueError, match=r"unknown widget 'blu' \(did you mean 'blue'\?\); choose one of: blue"):
        registry.get("blu")
    with pytest.raises(ValueError, match="must not contain ':'"):
        registry.register("a:b")(lambda: None)


def test_options_are_checked_against_the_keyword_only_parameters() -> None:
    registry = widgets()
    assert registry.check("blue", {"label": "x", "shade": 1}) == {"label": "x", "shade": 1}
    with pytest.raises(ValueError, match=r"has no option 'shad' \(did you mean 'shade'\?\); its options are"):
        registry.check("blue", {"label": "x", "shad": 1.0})
    with pytest.raises(ValueError, match=r"needs option\(s\) \['label'\]"):
        registry.check("blue", {})
    with pytest.raises(ValueError, match="option 'shade' = 'dark' is invalid: Input should be a valid number"):
        registry.check("blue", {"label": "x", "shade": "dark"})
    with pytest.raises(ValueError, match="'size' is set by reasonrl, not an option"):
        registry.check("blue", {"label": "x", "size": 3})
    assert registry.bind("blue", {"label": "L"}, size=7, other=1)(2) == "blue 2 0.5 L 7"  # context it declares


def test_a_plug_in_from_a_file_and_from_a_module(tmp_path: Path) -> None:
    plugin = tmp_path / "mine.py"
    plugin.write_text("def green(x, *, depth: int = 2):\n    return x * depth\n")
    registry = widgets()
    assert registry.bind(f"{plugin}:green", {"depth": 3})(2) == 6
    assert registry.get("os.path:basename")("/a/b") == "b"
    with pytest.raises(ValueError, match="has no function 'purple'"):
        registry.get(f"{plugin}:purple")
    with pytest.raises(ValueError, match="cannot import 'no_such_module_xyz'"):
        registry.get("no_such_module_xyz:f")


def test_registered_algorithm_names() -> None:
    assert ADVANTAGES.names() == ("grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "tree", "gae")
    assert POLICY_LOSSES.names() == ("ppo", "gppo", "gspo", "gspo_token", "cispo")
    assert CORRECTIONS.names() == ("none", "decoupled", "tis", "icepop")
    assert LOSS_AGGREGATIONS.names() == (
        "token-mean",
        "seq-mean-token-mean",
        "seq-mean-token-sum",
        "seq-mean-token-sum-norm",
    )
    assert KL_ESTIMATORS.names() == ("k1", "k2", "k3")


def test_every_family_resolves() -> None:
    for family in FAMILIES:
        assert registry(family).names(), family
