"""The exact and numeric verifiers."""

from __future__ import annotations

from fractions import Fraction

import pytest

from reasonrl.rewards import get_verifier
from reasonrl.rewards.match import parse_number


@pytest.mark.parametrize(
    ("options", "response", "answer", "expected"),
    [
        ({}, "Paris", "paris", 1.0),
        ({}, "  New   York\n", "new york", 1.0),
        ({}, "<answer> Blue </answer>", "blue", 1.0),
        ({}, r"It is \boxed{blue}", "blue", 1.0),
        ({}, "Lyon", "paris", 0.0),
        ({"ignore_case": False}, "Paris", "paris", 0.0),
        ({"normalize_whitespace": False}, "New  York", "New York", 0.0),
        ({"extract": "none"}, "<answer>a</answer>", "a", 0.0),
        ({}, "-4", -4, 1.0),
        ({}, "", "", 0.0),
    ],
)
def test_exact(options: dict, response: str, answer: object, expected: float) -> None:
    assert get_verifier("exact", **options)(response, answer) == expected


@pytest.mark.parametrize(
    ("options", "response", "answer", "expected"),
    [
        ({}, "1,000", "1000", 1.0),
        ({}, "1000", 1000, 1.0),
        ({}, "-3", "-3", 1.0),
        ({}, "2.50", "2.5", 1.0),
        ({}, "1/2", "0.5", 1.0),
        ({}, r"\frac{1}{2}", "0.5", 1.0),
        ({}, "<answer>$12,345.5$</answer>", 12345.5, 1.0),
        ({}, "0.3333333", "1/3", 1.0),
        ({}, "0.33", "1/3", 0.0),
        ({"tolerance": 0.01}, "0.33", "1/3", 1.0),
        ({"tolerance": 0}, "0.3333333", "1/3", 0.0),
        ({"tolerance": 0.1}, "105", "100", 1.0),
        ({"tolerance": 0.1}, "111", "100", 0.0),
        ({}, "1e3", "1000", 1.0),
        ({}, "twelve", "12", 0.0),
        ({}, "12", "twelve", 0.0),
        ({}, "1/0", "0", 0.0),
    ],
)
def test_numeric(options: dict, response: str, answer: object, expected: float) -> None:
    assert get_verifier("numeric", **options)(response, answer) == expected


def test_parse_number_is_exact() -> None:
    assert parse_number("0.1") + parse_number("0.2") == Fraction(3, 10)
    assert parse_number("-1,234,567.5") == Fraction(-2469135, 2)
    assert parse_number("1" * 1000) is None
    assert parse_number("nan") is None


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="tolerance must be a number >= 0"):
        get_verifier("numeric", tolerance=-1)
    with pytest.raises(ValueError, match="option 'extract' = 'tags' is invalid: Input should be 'auto', 'answer_tag'"):
        get_verifier("exact", extract="tags")
