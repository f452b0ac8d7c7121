"""The math verifier: our answer extraction, math-verify's equivalence, our timeout."""

from __future__ import annotations

import time

import pytest

from reasonrl.rewards import get_verifier
from reasonrl.rewards.math import equivalent, plain_number_verdict


@pytest.fixture(scope="module")
def math_verifier():
    return get_verifier("math")


@pytest.mark.parametrize(
    ("response", "answer", "expected"),
    [
        (r"So the result is \boxed{\frac{1}{2}}.", "0.5", 1.0),
        (r"\boxed{0.5}", r"\frac{1}{2}", 1.0),
        (r"\boxed{1,000}", "1000", 1.0),
        (r"\boxed{1000}", "1,000", 1.0),
        (r"\boxed{\dfrac{3}{4}}", "0.75", 1.0),
        (r"\boxed{-3}", "-3", 1.0),
        (r"\boxed{-3}", "3", 0.0),
        (r"First \boxed{1}, no wait: \boxed{2}", "2", 1.0),
        (r"First \boxed{1}, no wait: \boxed{2}", "1", 0.0),
        (r"\boxed{[1,2)}", "[1,2)", 1.0),
        (r"\boxed{(1,2]}", "[1,2)", 0.0),
        (r"\boxed{\{3,1,2\}}", r"\{1,2,3\}", 1.0),
        (r"\boxed{(x+1)^2}", "x^2+2x+1", 1.0),
        (r"\boxed{(x+1)^2}", "x^2+1", 0.0),
        ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "72", 1.0),
        ("The answer is 42.", "42", 1.0),
        ("The answer is 42.", "43", 0.0),
        ("I cannot solve this.", "42", 0.0),
        (r"\boxed{42}", 42, 1.0),
        (r"\boxed{2.5}", 2.5, 1.0),
        ("The answer is $18.", "Janet makes 9 * 2 = 18.\n#### 18", 1.0),
        ("The answer is 18 dollars.", "18", 1.0),
        (r"She pays \boxed{\$1,800}.", "1800", 1.0),
        (r"\boxed{18 \text{ dollars}}", "18", 1.0),
        (r"\boxed{5}", r"The solution gives $\boxed{5}$", 1.0),
    ],
)
def test_math_equivalence(math_verifier, response: str, answer: object, expected: float) -> None:
    assert math_verifier(response, answer) == expected


def test_last_number_fallback_is_an_option() -> None:
    response = "48 + 24 makes 72"
    assert get_verifier("math", last_number_fallback=True)(response, "72") == 1.0
    assert get_verifier("math", last_number_fallback=False)(response, "72") == 0.0


def test_pathological_expression_is_stopped() -> None:
    verifier = get_verifier("math", timeout_seconds=0.5)
    start = time.perf_counter()
    assert verifier(r"\boxed{9^{9^{9^{9}}}}", "5") == 0.0
    assert time.perf_counter() - start < 10


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ValueError, match="timeout_seconds must be a positive, finite number of seconds"):
        get_verifier("math", timeout_seconds=0)
    with pytest.raises(
        ValueError, match="option 'last_number_fallback' = 'yes' is invalid: Input should be a valid boolean"
    ):
        get_verifier("math", last_number_fallback="yes")


PLAIN_PAIRS = [
    ("42", "42"),
    ("42", "43"),
    ("-3", "3"),
    ("-3", "-3"),
    ("1000", "1,000"),
    ("1,000,000", "1000000"),
    ("-1,234", "-1234"),
    ("007", "7"),
    ("0", "-0"),
    ("2.5", "2.50"),
    ("18", "18.0"),
    ("0.5", "0.25"),
    ("123456789012345678901234567890", "123456789012345678901234567891"),
]


@pytest.mark.parametrize(("reference", "predicted"), PLAIN_PAIRS)
def test_plain_number_shortcut_agrees_with_math_verify(reference: str, predicted: str) -> None:
    verdict = plain_number_verdict(reference, predicted)
    if verdict is not None:
        assert verdict == equivalent(reference, predicted)


def test_plain_number_shortcut_defers_when_unsure() -> None:
    assert plain_number_verdict("0.5", "0.25") is None  # math-verify rounds decimals before comparing
    assert plain_number_verdict(r"\frac{1}{2}", "0.5") is None
    assert plain_number_verdict("1,00", "100") is None
    assert plain_number_verdict("42", "42") is True
