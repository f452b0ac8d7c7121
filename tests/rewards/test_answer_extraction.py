"""Answer extraction: which part of a response counts as the answer, and that it stays linear on junk."""

from __future__ import annotations

import time

import pytest

from reasonrl.rewards.extract import (
    answer_phrase,
    answer_tag,
    as_text,
    clean_answer,
    extract_answer,
    final_answer,
    gsm8k_answer,
    last_boxed,
    last_number,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{\frac{1}{2}}.", r"\frac{1}{2}"),
        (r"\boxed{1} then \boxed{2}", "2"),
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),
        (r"\boxed {x^{2}}", "x^{2}"),
        (r"\fbox{7}", "7"),
        (r"\boxed{3} and a cut-off \boxed{\frac{1}{", "3"),
        (r"{\boxed{5}}", "5"),
        ("no box", None),
        (r"\boxed{}", ""),
    ],
)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


def test_markers() -> None:
    assert answer_tag("<think>x</think><answer> 42 </answer>") == " 42 "
    assert answer_tag("<answer>1</answer> <answer>2</answer>") == "2"
    assert answer_tag("<answer>unclosed") is None
    assert gsm8k_answer("work\n#### 1,000\n") == "1,000"
    assert answer_phrase("The answer is 2.5.") == "2.5"
    assert answer_phrase("So the final answer is: $x+1$. Done") == "$x+1$"
    assert answer_phrase("Answer: 7") == "7"
    assert answer_phrase("The answer is 1,234 dollars per week.") == "1,234"
    assert answer_phrase("The answer is 2 x") == "2 x"  # one letter may be a variable: not a unit
    assert last_number("between -3 and 1,234.5 or 3/4 apples") == "3/4"
    assert last_number("none") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  $42$. ", "42"),
        ("**7**", "7"),
        (r"\(x\)", "x"),
        ("$$1$$", "1"),
        ("$18", "18"),
        (r"\$1,000.50", "1,000.50"),
        ("...", "..."),
        ("  ", None),
        (None, None),
    ],
)
def test_clean_answer(raw: str | None, expected: str | None) -> None:
    assert clean_answer(raw) == expected


def test_extract_answer_modes() -> None:
    text = r"<answer>\boxed{5}</answer> \boxed{6}"
    assert extract_answer(text, "auto") == "5"
    assert extract_answer(text, "answer_tag") == r"\boxed{5}"
    assert extract_answer(text, "boxed") == "6"
    assert extract_answer(" plain 9 ", "none") == "plain 9"
    assert extract_answer(r"see \boxed{4}", "auto") == "4"
    assert extract_answer("just 4", "answer_tag") is None


def test_final_answer_precedence_and_fallback() -> None:
    assert final_answer(r"The answer is 3. \boxed{4}", last_number_fallback=False) == "4"
    assert final_answer("The answer is 3.\n#### 5", last_number_fallback=False) == "5"
    assert final_answer("The answer is 42.", last_number_fallback=False) == "42"
    assert final_answer("I got 41, then 42", last_number_fallback=True) == "42"
    assert final_answer("I got 41, then 42", last_number_fallback=False) is None


def test_as_text_accepts_anything() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert as_text(None) == ""
    assert as_text(b"\xffok") == "\ufffdok"
    assert as_text(12) == "12"
    assert as_text(Broken()) == ""


@pytest.mark.parametrize(
    "junk",
    [
        "\\boxed{" * 100_000,
        "<answer>" * 100_000,
        "The answer is" + " " * 1_000_000 + "x",
        "$" * 1_000_000,
        "{" * 500_000 + "}" * 500_000,
    ],
)
def test_adversarial_inputs_stay_fast(junk: str) -> None:
    start = time.perf_counter()
    final_answer(junk, last_number_fallback=True)
    extract_answer(junk)
    assert time.perf_counter() - start < 5  # quadratic behaviour would take minutes
