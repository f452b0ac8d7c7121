"""Weighted sums keep every component."""

from __future__ import annotations

import pytest

from reasonrl.rewards import get_verifier
from reasonrl.rewards.combine import ComponentError, component_names, weighted_sum


def test_weighted_sum_keeps_unweighted_components() -> None:
    terms = [
        ("math", 1.0, get_verifier("math")),
        ("format", 0.5, get_verifier("format", tags=["answer"])),
        ("overlong", 1.0, get_verifier("overlong", max_length=40, buffer=20)),
    ]
    response = "<answer>The answer is 4.</answer>" + " " * 5  # 38 characters
    total, components = weighted_sum(terms, response, "4", None)
    assert components == {"math": 1.0, "format": 1.0, "overlong": pytest.approx(-0.9)}
    assert total == pytest.approx(1.0 + 0.5 - 0.9)


def test_component_names() -> None:
    assert component_names(["math", "format", "format", "/x/r.py:mine"]) == [
        "math",
        "format",
        "format#2",
        "mine",
    ]


def test_a_failing_component_is_named() -> None:
    class Boom:
        def __call__(self, *args: object) -> float:
            raise KeyError("missing")

    with pytest.raises(ComponentError, match="reward 'boom' failed: KeyError"):
        weighted_sum([("math", 1.0, get_verifier("math")), ("boom", 1.0, Boom())], "1", "1", None)
