"""The `math` verifier: is the response's final answer mathematically equal to the reference?

Extraction is ours (`extract.final_answer`: last box, `####`, "the answer is", optionally the last number)
so the rules are visible and testable; equivalence is math-verify's (`parse` + `verify`: LaTeX and plain
expressions through sympy, intervals, sets, `1,000`, `\\dfrac`, percentages), which is far more complete
than anything worth rewriting. Its own signal-based timeouts are switched off (they break off the main
thread) and replaced by `deadline.call_with_deadline`, which works everywhere.

Plain numbers on both sides (`42`, `-1,000`, `2.50`: GSM8K and most RLVR data) skip math-verify when the
outcome is certain: equal values are equal to it too, and two different integers differ for it too. Its
LaTeX grammar costs milliseconds per answer; this check costs microseconds. Anything else, including two
different decimals (which it compares after rounding), goes to math-verify.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import partial
from typing import Any

from math_verify import parse, verify

from reasonrl.rewards.deadline import DeadlineExceeded, call_with_deadline, check_seconds
from reasonrl.rewards.extract import as_text, final_answer, gsm8k_answer, last_boxed

logger = logging.getLogger(__name__)

_PLAIN_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_PLAIN_NUMBER_MAX_CHARS = 40


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once per process that its timeout is off; here that is deliberate, not a risk."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledWarning())


def math_verifier(*, last_number_fallback: bool = True, timeout_seconds: float = 5.0) -> Any:
    """Options of `get_verifier("math", ...)`.

    last_number_fallback: with no box, `####` or "the answer is", take the last number in the response
        (lenient, as GSM8K evaluations do; turn off to reward only explicit answers).
    timeout_seconds: wall-clock limit on math-verify's parsing and comparison of one response; a response
        that takes longer scores 0 (sympy can take minutes on a crafted expression).
    """
    if not isinstance(last_number_fallback, bool):
        raise ValueError(f"math: last_number_fallback must be true or false, got {last_number_fallback!r}")
    seconds = check_seconds(timeout_seconds, "math: timeout_seconds")
    return partial(score_math, last_number_fallback=last_number_fallback, timeout_seconds=seconds)


def score_math(
    response: Any,
    answer: Any,
    meta: Mapping[str, Any] | None,
    *,
    last_number_fallback: bool,
    timeout_seconds: float,
) -> float:
    """1.0 if the final answer of `response` equals `answer` (a raw string, number or LaTeX), else 0.0."""
    predicted = final_answer(as_text(response), last_number_fallback=last_number_fallback)
    reference = gold_answer(answer)
    if predicted is None or reference is None:
        return 0.0
    settled = plain_number_verdict(reference, predicted)
    if settled is not None:
        return 1.0 if settled else 0.0
    try:
        return 1.0 if call_with_deadline(equivalent, reference, predicted, seconds=timeout_seconds) else 0.0
    except DeadlineExceeded:
        logger.warning("math-verify took over %g s on answer %.200r; scored 0", timeout_seconds, predicted)
        return 0.0


def gold_answer(answer: Any) -> str | None:
    """The reference as an expression: a full GSM8K or MATH solution is reduced to its final answer."""
    text = as_text(answer).strip()
    for extractor in (last_boxed, gsm8k_answer):
        found = extractor(text)
        if found is not None:
            text = found.strip()
            break
    return text or None


def plain_number_verdict(reference: str, predicted: str) -> bool | None:
    """math-verify's verdict on two plain numbers where it is certain, else None (ask math-verify)."""
    values = []
    for text in (reference, predicted):
        if len(text) > _PLAIN_NUMBER_MAX_CHARS or not _PLAIN_NUMBER.fullmatch(text):
            return None
        values.append(Decimal(text.replace(",", "")))
    if values[0] == values[1]:
        return True
    if "." not in reference and "." not in predicted:
        return False
    return None


def equivalent(reference: str, predicted: str) -> bool:
    """math-verify's equivalence of two bare answers (no delimiters), reference first (it is not symmetric).

    Each is wrapped in `$...$`: math-verify only reads LaTeX inside math delimiters, and without them a raw
    `\\frac{1}{2}` or `[1,2)` gold answer would not parse at all.
    """
    gold = parse(f"${reference}$", parsing_timeout=None)
    target = parse(f"${predicted}$", parsing_timeout=None)
    return bool(gold and target and verify(gold, target, timeout_seconds=None))
