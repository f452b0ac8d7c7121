"""The `countdown` verifier: does the arithmetic expression in the response reach the target with the numbers?

The expression comes from the model, so it is never `eval`-ed: it is parsed with `ast` and walked with a
whitelist (integer literals, parentheses, `+ - * /`). Anything else, a name, a call, an attribute, a power,
is rejected before any of it runs, so `__import__('os').system(...)` scores 0 and does nothing. Division
uses exact fractions, so `(6/4)*4` is 6, not 6.000000000000001.
"""

from __future__ import annotations

import ast
import operator
from collections import Counter
from collections.abc import Callable, Mapping
from fractions import Fraction
from functools import partial
from typing import Any

from reasonrl.rewards.extract import ExtractMode, as_text, check_extract_mode, extract_answer

# Countdown expressions are a few dozen characters; a cap keeps `ast.parse` away from megabyte inputs.
_MAX_EXPRESSION_CHARS = 1000
_OPERATORS: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
# What models write instead of the ASCII operators.
_TRANSLATE = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-"})


class _Rejected(Exception):
    """The expression uses something outside the whitelist."""


def countdown_verifier(*, extract: ExtractMode = "auto", use_all: bool = False) -> Any:
    """Options of `get_verifier("countdown", ...)`; the answer is `{"target": int, "numbers": [int, ...]}`.

    extract: which part of the response holds the expression (auto, answer_tag, boxed or none); a trailing
        `= result` is ignored.
    use_all: require every given number to be used (TinyZero's rule); by default each is used at most once.
    """
    if not isinstance(use_all, bool):
        raise ValueError(f"countdown: use_all must be true or false, got {use_all!r}")
    return partial(score_countdown, extract=check_extract_mode(extract), use_all=use_all)


def score_countdown(
    response: Any, answer: Any, meta: Mapping[str, Any] | None, *, extract: ExtractMode, use_all: bool
) -> float:
    """1.0 if the expression uses only the given numbers (each once at most) and equals the target, else 0."""
    problem = _problem(answer)
    expression = extract_answer(as_text(response), extract)
    if problem is None or expression is None:
        return 0.0
    target, numbers = problem
    expression = expression.split("=", 1)[0].translate(_TRANSLATE).strip()
    if not expression or len(expression) > _MAX_EXPRESSION_CHARS:
        return 0.0
    try:
        tree = ast.parse(expression, mode="eval")
        used: list[int] = []
        value = _evaluate(tree.body, used)
    except (SyntaxError, ValueError, RecursionError, MemoryError, ZeroDivisionError, _Rejected):
        return 0.0
    remaining = Counter(numbers)
    remaining.subtract(used)
    if any(count < 0 for count in remaining.values()):
        return 0.0  # a number not given, or used more often than given
    if use_all and any(count > 0 for count in remaining.values()):
        return 0.0
    return 1.0 if value == target else 0.0


def _problem(answer: Any) -> tuple[int, list[int]] | None:
    """(target, numbers) from the answer mapping, or None if it is not one."""
    if not isinstance(answer, Mapping):
        return None
    target, numbers = answer.get("target"), answer.get("numbers")
    if not _is_int(target) or not isinstance(numbers, list | tuple) or not all(_is_int(n) for n in numbers):
        return None
    return target, list(numbers)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _evaluate(node: ast.expr, used: list[int]) -> Fraction:
    """Value of a whitelisted expression tree; every integer literal met is appended to `used`."""
    if isinstance(node, ast.Constant) and _is_int(node.value):
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left = _evaluate(node.left, used)
        right = _evaluate(node.right, used)
        return _OPERATORS[type(node.op)](left, right)
    raise _Rejected(type(node).__name__)
