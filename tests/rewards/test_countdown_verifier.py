"""The countdown verifier: whitelisted arithmetic, numbers used at most once, never eval."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonrl.rewards import get_verifier

PROBLEM = {"target": 10, "numbers": [2, 3, 5]}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<answer>2*5</answer>", 1.0),
        ("<answer>(3 - 2) * 5 * 2</answer>", 0.0),  # 2 used twice but given once
        ("<answer>2 * (3 + 5) - 6</answer>", 0.0),  # 6 not given
        ("<answer>5 + 5</answer>", 0.0),  # 5 used twice
        ("<answer>2 + 3 + 5</answer>", 1.0),
        ("<answer>2 + 3</answer>", 0.0),  # valid numbers, wrong result
        ("<answer>2 × 5</answer>", 1.0),
        ("<answer>2 * 5 = 10</answer>", 1.0),
        (r"\boxed{(5 / 2) * (3 + 2 - 1)}", 0.0),
        ("<answer>5 / (3 - 3)</answer>", 0.0),
        ("<answer>2 ** 3 + 2</answer>", 0.0),  # powers are not allowed
        ("<answer>-2 + 12</answer>", 0.0),  # neither are signs or unknown numbers
        ("<answer>2 * 5.0</answer>", 0.0),
        ("<answer>2 * 5 +</answer>", 0.0),
        ("<answer></answer>", 0.0),
    ],
)
def test_countdown(response: str, expected: float) -> None:
    assert get_verifier("countdown")(response, PROBLEM) == expected


def test_exact_fractions() -> None:
    assert get_verifier("countdown")("<answer>(6 / 4) * 4</answer>", {"target": 6, "numbers": [6, 4, 4]}) == 1.0
    assert get_verifier("countdown")("<answer>1 / 3 * 3</answer>", {"target": 1, "numbers": [1, 3, 3]}) == 1.0


def test_use_all() -> None:
    verifier = get_verifier("countdown", use_all=True)
    assert verifier("<answer>2*5</answer>", PROBLEM) == 0.0
    assert verifier("<answer>2+3+5</answer>", PROBLEM) == 1.0


def test_malicious_expressions_are_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    verifier = get_verifier("countdown")
    for attack in (
        f"<answer>__import__('os').system('touch {marker}')</answer>",
        f"<answer>open('{marker}', 'w')</answer>",
        "<answer>(lambda: 10)()</answer>",
        "<answer>[10][0]</answer>",
        "<answer>(10).real</answer>",
        "<answer>" + "(" * 10_000 + "10" + ")" * 10_000 + "</answer>",
    ):
        assert verifier(attack, {"target": 10, "numbers": [10]}) == 0.0
    assert not marker.exists()


@pytest.mark.parametrize("answer", [None, 10, {"target": "10", "numbers": [10]}, {"target": 10}, {"numbers": [1]}])
def test_malformed_problem_scores_zero(answer: object) -> None:
    assert get_verifier("countdown")("<answer>10</answer>", answer) == 0.0
