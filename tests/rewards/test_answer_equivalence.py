"""Answer classes (`group_answers`) depend only on the answers, never on the order of the responses."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from reasonrl.rewards.equivalence import NO_ANSWER, AnswerKey, answer_key, group_answers


def partition(answers: Sequence[str | None], classes: Sequence[int]) -> frozenset[frozenset[str]]:
    """The classes as sets of answer strings: equal up to renumbering of the classes."""
    groups: dict[int, set[str]] = {}
    for answer, label in zip(answers, classes, strict=True):
        assert (answer is None) == (label == NO_ANSWER)
        if answer is not None:
            groups.setdefault(label, set()).add(answer)
    return frozenset(frozenset(g) for g in groups.values())


MATH = ["1/2", "0.5", "\\frac{1}{2}", "2/4", "x+1", "1+x", "\\frac12", "0.50", "3", "3.0", "1,000", "1000", None]
NUMERIC = ["1/2", "0.5", "\\frac{1}{2}", "2/4", "1e3", "1000", "1,000", "seven", "Seven", " seven ", None, "-0"]
TEXT = ["Paris", "paris", " PARIS ", "Lyon", "lyon  ", "1/2", "0.5", "x+1", "1+x", None]


@pytest.mark.parametrize(("task", "answers"), [("math", MATH), ("numeric", NUMERIC), ("exact", TEXT)])
def test_shuffling_responses_never_changes_their_classes(task: str, answers: list[str | None]) -> None:
    key = answer_key(task)
    reference = partition(answers, group_answers(answers, key))
    rng = random.Random(0)
    for _ in range(6):
        shuffled = answers[:]
        rng.shuffle(shuffled)
        classes = group_answers(shuffled, key)
        assert partition(shuffled, classes) == reference
        # numbered by first appearance
        seen = [c for c in dict.fromkeys(classes) if c != NO_ANSWER]
        assert seen == list(range(len(seen)))


def test_math_classes_merge_numbers_and_expressions() -> None:
    classes = partition(MATH, group_answers(MATH, answer_key("math")))
    assert frozenset({"1/2", "0.5", "\\frac{1}{2}", "2/4", "\\frac12", "0.50"}) in classes
    assert frozenset({"x+1", "1+x"}) in classes
    assert frozenset({"3", "3.0"}) in classes and frozenset({"1,000", "1000"}) in classes
    numeric = partition(NUMERIC, group_answers(NUMERIC, answer_key("numeric")))
    assert frozenset({"1/2", "0.5", "\\frac{1}{2}", "2/4"}) in numeric
    assert frozenset({"seven", "Seven", " seven "}) in numeric and frozenset({"1e3", "1000", "1,000"}) in numeric
    text = partition(TEXT, group_answers(TEXT, answer_key("exact")))
    assert frozenset({"1/2"}) in text and frozenset({"x+1"}) in text and len(text) == 6


def test_a_non_transitive_equivalence_gives_the_same_classes_in_any_order() -> None:
    # 1 ~ 2 and 2 ~ 3 but not 1 ~ 3: grouping against each class's first-seen member depended on the order.
    def near(a: str, b: str) -> bool:
        return abs(int(a) - int(b)) <= 1

    key = AnswerKey(lambda text: text, near, lambda text: (("text", text), False))
    answers = ["1", "2", "3", "5", "6"]
    reference = partition(answers, group_answers(answers, key))
    for order in (["2", "1", "3", "6", "5"], ["3", "2", "1", "5", "6"], ["6", "3", "5", "1", "2"]):
        assert partition(order, group_answers(order, key)) == reference
