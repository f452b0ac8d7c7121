"""Reading a task's answer out of a response, and deciding when two answers are the same answer.

Majority voting (evaluation) and majority pseudo-labels (TTRL training) count votes per *answer*, not per
string: `0.5`, `1/2` and `\\frac{1}{2}` must vote together. How an answer is read and compared follows the
verifier that scores the task, so a vote never merges answers its verifier would tell apart:

- `math`: the final answer as the math verifier reads it (box, `####`, "the answer is", last number), and
  math-verify's equivalence (plain numbers settled without it), under a wall-clock limit;
- `numeric`: `extract_answer`, equal as exact numbers;
- every other verifier (`exact`, `gym`, `countdown`, user functions): `extract_answer`, equal after case and
  whitespace normalisation.

Equivalence is checked against each class's first member. math-verify's relation is not guaranteed to be
transitive, so the first-seen answer is the class's reference, as in the `find_majority_answer` of
search-and-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from reasonrl.rewards.deadline import DeadlineExceeded, call_with_deadline
from reasonrl.rewards.extract import as_text, check_extract_mode, extract_answer, final_answer
from reasonrl.rewards.match import parse_number
from reasonrl.rewards.math import equivalent, plain_number_verdict

NO_ANSWER = -1
"""The class of a response with no answer to read; it never votes."""


@dataclass(frozen=True)
class AnswerKey:
    """How one task's answers are read (`extract`) and compared (`same(reference, other)`)."""

    extract: Callable[[str], str | None]
    same: Callable[[str, str], bool]


def answer_key(task: str, options: Mapping[str, Any] | None = None) -> AnswerKey:
    """The key of the verifier named `task` with its `options` (a prompt's `meta["verifier_options"]`)."""
    options = options or {}
    if task == "math":
        fallback = bool(options.get("last_number_fallback", True))
        seconds = float(options.get("timeout_seconds", 5.0))
        return AnswerKey(partial(_math_answer, fallback=fallback), partial(_math_same, seconds=seconds))
    mode = check_extract_mode(options.get("extract", "auto"))
    extract = partial(_extracted, mode=mode)
    return AnswerKey(extract, _numbers_same if task == "numeric" else _text_same)


def group_answers(answers: Sequence[str | None], key: AnswerKey) -> list[int]:
    """The equivalence class of each answer, numbered 0, 1, ... in order of first appearance; `NO_ANSWER`
    for None. Identical normalised strings skip the comparison, so most votes cost a dict lookup."""
    classes: list[int] = []
    references: list[str] = []
    by_text: dict[str, int] = {}
    for answer in answers:
        if answer is None:
            classes.append(NO_ANSWER)
            continue
        text = _normal(answer)
        label = by_text.get(text)
        if label is None:
            label = next((i for i, ref in enumerate(references) if key.same(ref, answer)), len(references))
            if label == len(references):
                references.append(answer)
            by_text[text] = label
        classes.append(label)
    return classes


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


def _extracted(response: str, *, mode: Any) -> str | None:
    return extract_answer(as_text(response), mode)


def _text_same(reference: str, other: str) -> bool:
    return _normal(reference) == _normal(other)


def _numbers_same(reference: str, other: str) -> bool:
    a, b = parse_number(reference), parse_number(other)
    return a == b if a is not None and b is not None else _text_same(reference, other)
