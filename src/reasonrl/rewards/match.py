"""The `exact` and `numeric` verifiers: answers compared as strings or as numbers, without sympy.

Both are for tasks whose answers have one spelling (a word, an integer, a decimal): they are a thousand times
faster than math-verify and have no failure modes worth a timeout. Free-form math belongs to `math`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction
from functools import partial
from typing import Any

from reasonrl.rewards.extract import ExtractMode, as_text, check_extract_mode, clean_answer, extract_answer

# Long enough for any real number; longer strings are not parsed (Fraction of a million digits is slow).
_MAX_NUMBER_CHARS = 200
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?:\D|$))")
_LATEX_FRACTION = re.compile(r"^(-?)\\d?frac\{(-?\d+)\}\{(\d+)\}$")


def exact_verifier(
    *, extract: ExtractMode = "auto", ignore_case: bool = True, normalize_whitespace: bool = True
) -> Any:
    """Options of `get_verifier("exact", ...)`.

    extract: which part of the response is the answer (see `extract.extract_answer`): auto, answer_tag,
        boxed or none.
    ignore_case: compare case-insensitively.
    normalize_whitespace: collapse runs of whitespace to one space before comparing.
    """
    for name, value in (("ignore_case", ignore_case), ("normalize_whitespace", normalize_whitespace)):
        if not isinstance(value, bool):
            raise ValueError(f"exact: {name} must be true or false, got {value!r}")
    mode = check_extract_mode(extract)
    return partial(score_exact, extract=mode, ignore_case=ignore_case, normalize_whitespace=normalize_whitespace)


def score_exact(
    response: Any,
    answer: Any,
    meta: Mapping[str, Any] | None,
    *,
    extract: ExtractMode,
    ignore_case: bool,
    normalize_whitespace: bool,
) -> float:
    """1.0 if the extracted answer equals `answer` after the chosen normalisation, else 0.0."""
    predicted = extract_answer(as_text(response), extract)
    reference = clean_answer(as_text(answer))
    if predicted is None or reference is None:
        return 0.0

    def normal(text: str) -> str:
        text = " ".join(text.split()) if normalize_whitespace else text
        return text.casefold() if ignore_case else text

    return 1.0 if normal(predicted) == normal(reference) else 0.0


def numeric_verifier(*, extract: ExtractMode = "auto", tolerance: float = 1e-6) -> Any:
    """Options of `get_verifier("numeric", ...)`.

    extract: which part of the response is the answer (auto, answer_tag, boxed or none); it must then be a
        number: `42`, `-3`, `2.50`, `1,000`, `1/2`, `\\frac{1}{2}`, `1e-3`.
    tolerance: accepted difference, relative to the reference's magnitude but at least absolute:
        |predicted - reference| <= tolerance * max(1, |reference|). 0 demands exact equality.
    """
    if not isinstance(tolerance, int | float) or isinstance(tolerance, bool) or not tolerance >= 0:
        raise ValueError(f"numeric: tolerance must be a number >= 0, got {tolerance!r}")
    return partial(score_numeric, extract=check_extract_mode(extract), tolerance=Fraction(tolerance))


def score_numeric(
    response: Any, answer: Any, meta: Mapping[str, Any] | None, *, extract: ExtractMode, tolerance: Fraction
) -> float:
    """1.0 if the extracted answer is a number within `tolerance` of `answer`, else 0.0."""
    predicted = parse_number(extract_answer(as_text(response), extract))
    reference = parse_number(clean_answer(as_text(answer)))
    if predicted is None or reference is None:
        return 0.0
    return 1.0 if abs(predicted - reference) <= tolerance * max(1, abs(reference)) else 0.0


def parse_number(text: str | None) -> Fraction | None:
    """`text` as an exact number, or None if it is not one. Exact so that `0.1 + 0.2`-style float error
    never decides a reward."""
    if text is None or len(text) > _MAX_NUMBER_CHARS:
        return None
    text = _THOUSANDS.sub("", text.strip().replace(" ", ""))
    latex = _LATEX_FRACTION.match(text)
    if latex:
        sign, numerator, denominator = latex.groups()
        text = f"{sign}{numerator}/{denominator}"
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
