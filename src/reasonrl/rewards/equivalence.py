"""Reading a task's answer out of a response, and deciding when two answers are the same answer.

Majority voting (evaluation) and majority pseudo-labels (TTRL training) count votes per *answer*, not per
string: `0.5`, `1/2` and `\\frac{1}{2}` must vote together. How an answer is read and compared follows the
verifier that scores the task, so a vote never merges answers its verifier would tell apart:

- `math`: the final answer as the math verifier reads it (box, `####`, "the answer is", last number), and
  math-verify's equivalence (plain numbers settled without it), under a wall-clock limit;
- `numeric`: `extract_answer`, equal as exact numbers;
- every other verifier (`exact`, `gym`, `countdown`, user functions): `extract_answer`, equal after case and
  whitespace normalisation.

Classes do not depend on the order of the responses. Each answer first gets a canonical key
(`AnswerKey.canonical`): its normalised text, or for numbers its exact value as a Fraction (`numeric`
always; `math` for plain integers, decimals, `a/b` and `\\frac{a}{b}`, so `0.5`, `1/2`, `2/4` and
`\\frac{1}{2}` share a key without math-verify). Equal keys are one answer. For `exact`, `numeric` and the
other text verifiers the key is the whole relation. For `math`, different keys are then compared pairwise
with math-verify as a fallback (two exact rationals, integers or fractions without a decimal point, are
settled without it): the distinct keys are visited in sorted order, and each joins the first earlier class
whose reference (the class's smallest key, spelled by its smallest string) math-verify finds equal, else it
starts a class. math-verify's relation is not guaranteed to be transitive; this rule depends only on the set
of answers, never on which response came first. Classes are then numbered by first appearance.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import partial
from typing import Any

from reasonrl.rewards.deadline import DeadlineExceeded, call_with_deadline
from reasonrl.rewards.extract import as_text, check_extract_mode, extract_answer, final_answer
from reasonrl.rewards.match import parse_number
from reasonrl.rewards.math import _PLAIN_NUMBER, equivalent, plain_number_verdict

NO_ANSWER = -1
"""The class of a response with no answer to read; it never votes."""


Canonical = tuple[Hashable, bool]
"""An answer's canonical key and whether key equality settles equivalence (`exact`): two answers with
exact keys are the same answer exactly when their keys are equal, with no pairwise check."""


def _text_canonical(answer: str) -> Canonical:
    return ("text", _normal(answer)), True


@dataclass(frozen=True)
class AnswerKey:
    """How one task's answers are read (`extract`), keyed (`canonical`: equal keys are the same answer) and,
    where keys are not exact, compared pairwise (`same(reference, other)`)."""

    extract: Callable[[str], str | None]
    same: Callable[[str, str], bool]
    canonical: Callable[[str], Canonical] = _text_canonical


def answer_key(task: str, options: Mapping[str, Any] | None = None) -> AnswerKey:
    """The key of the verifier named `task` with its `options` (a prompt's `meta["verifier_options"]`)."""
    options = options or {}
    if task == "math":
        fallback = bool(options.get("last_number_fallback", True))
        seconds = float(options.get("timeout_seconds", 5.0))
        return AnswerKey(
            partial(_math_answer, fallback=fallback), partial(_math_same, seconds=seconds), _math_canonical
        )
    mode = check_extract_mode(options.get("extract", "auto"))
    extract = partial(_extracted, mode=mode)
    if task == "numeric":
        return AnswerKey(extract, _numbers_same, _number_canonical)
    return AnswerKey(extract, _text_same)


def group_answers(answers: Sequence[str | None], key: AnswerKey) -> list[int]:
    """The equivalence class of each answer, numbered 0, 1, ... in order of first appearance; `NO_ANSWER`
    for None. The partition depends only on the multiset of answers, not their order (module docstring):
    equal canonical keys are one answer, and pairwise checks run only between the sorted distinct keys that
    are not both exact, so most votes cost a dict lookup."""
    keys: dict[str, Canonical] = {}
    members: dict[Hashable, list[str]] = {}
    exact: dict[Hashable, bool] = {}
    for answer in answers:
        if answer is not None and answer not in keys:
            value, is_exact = keys[answer] = key.canonical(answer)
            members.setdefault(value, []).append(answer)
            exact[value] = exact.get(value, True) and is_exact
    leaders: list[tuple[Hashable, str]] = []  # each class's smallest key and its smallest spelling
    merged: dict[Hashable, int] = {}
    for value in sorted(members, key=_order):
        spelling = min(members[value])
        merged[value] = next(
            (
                i
                for i, (lead, reference) in enumerate(leaders)
                if not (exact[lead] and exact[value]) and key.same(reference, spelling)
            ),
            len(leaders),
        )
        if merged[value] == len(leaders):
            leaders.append((value, spelling))
    numbers: dict[int, int] = {}
    classes: list[int] = []
    for answer in answers:
        if answer is None:
            classes.append(NO_ANSWER)
        else:
            classes.append(numbers.setdefault(merged[keys[answer][0]], len(numbers)))
    return classes


def _order(value: Hashable) -> tuple[int, Fraction, str]:
    """A total order over canonical keys, which are (kind, value) pairs: numbers by value, then texts."""
    kind, inner = value  # type: ignore[misc]
    return (0, inner, "") if kind == "number" else (1, Fraction(0), str(inner))


def majority_class(classes: Sequence[int]) -> int:
    """The class with the most votes (ties: the one seen first); `NO_ANSWER` when nothing voted."""
    counts: dict[int, int] = {}
    for label in classes:
        if label != NO_ANSWER:
            counts[label] = counts.get(label, 0) + 1
    # dicts keep insertion order, and max keeps the first of equal counts: first seen wins ties.
    return max(counts, key=counts.__getitem__) if counts else NO_ANSWER


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def _math_answer(response: str, *, fallback: bool) -> str | None:
    return final_answer(as_text(response), last_number_fallback=fallback)


def _math_same(reference: str, other: str, *, seconds: float) -> bool:
    settled = plain_number_verdict(reference, other)
    if settled is not None:
        return settled
    try:
        return call_with_deadline(equivalent, reference, other, seconds=seconds)
    except DeadlineExceeded:
        return False


_RATIO = re.compile(r"(-?\d+)/(\d+)")
_LATEX_RATIO = re.compile(r"(-?)\\[dt]?frac(?:\{(-?\d+)\}\{(\d+)\}|(\d)(\d))")


def _math_canonical(answer: str) -> Canonical:
    """A plain number (`42`, `1,000`, `2.50`), `a/b` or `\\frac{a}{b}` as its exact value; anything else as
    normalised text. Exact (settled without math-verify) for integers and fractions; decimals are compared
    to other keys by math-verify, which rounds."""
    text = answer.strip()
    if len(text) <= 40:
        if _PLAIN_NUMBER.fullmatch(text):
            return ("number", Fraction(Decimal(text.replace(",", "")))), "." not in text
        ratio = _RATIO.fullmatch(text)
        latex = _LATEX_RATIO.fullmatch(text)
        sign, top, bottom = "", None, None
        if latex:
            sign, top, bottom, top1, bottom1 = latex.groups()
            top, bottom = top or top1, bottom or bottom1
        elif ratio:
            top, bottom = ratio.groups()
        if top is not None and bottom is not None and int(bottom) != 0:
            value = Fraction(int(top), int(bottom))
            return ("number", -value if sign else value), True
    return ("text", _normal(answer)), False


def _number_canonical(answer: str) -> Canonical:
    number = parse_number(answer)
    return (("number", number) if number is not None else ("text", _normal(answer))), True


def _extracted(response: str, *, mode: Any) -> str | None:
    return extract_answer(as_text(response), mode)


def _text_same(reference: str, other: str) -> bool:
    return _normal(reference) == _normal(other)


def _numbers_same(reference: str, other: str) -> bool:
    a, b = parse_number(reference), parse_number(other)
    return a == b if a is not None and b is not None else _text_same(reference, other)
