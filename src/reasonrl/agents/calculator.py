"""The `calculator` environment: arithmetic with a calculator tool.

The evaluator is `simpleeval` (a maintained safe-expression library) restricted to numbers and arithmetic
operators: no names, no functions, no attribute access, no `eval`, and powers and results bounded, so a
model's `9**9**9` is an error, not a stalled rollout.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable
from typing import Any

from simpleeval import SimpleEval, safe_add, safe_mult, safe_power

from reasonrl.agents.tool_env import ToolEnvironment
from reasonrl.agents.tools import ToolLimits
from reasonrl.data import Prompt

ALLOWED = re.compile(r"[0-9+\-*/%(). ]{1,64}")
OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: safe_add,
    ast.Sub: operator.sub,
    ast.Mult: safe_mult,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: safe_power,  # simpleeval's: refuses exponents past MAX_POWER
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
MAX_MAGNITUDE = 10**30


def calculate(expression: str) -> str:
    """The value of `expression` as text: an integer when it is one, else a float with up to 10 significant digits.
    Raises ValueError for anything that is not bounded arithmetic on numbers."""
    if not ALLOWED.fullmatch(expression):
        raise ValueError("an expression may hold only digits, + - * / % ( ) . and spaces, at most 64 characters")
    evaluator = SimpleEval(operators=OPERATORS, functions={}, names={})
    try:
        value = evaluator.eval(expression)
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except Exception as exc:  # simpleeval's own errors: syntax, a power too large
        raise ValueError(f"cannot evaluate {expression!r}: {exc}") from None
    if not isinstance(value, int | float) or abs(value) > MAX_MAGNITUDE:
        raise ValueError("the result is out of range")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value) if isinstance(value, int) else f"{value:.10g}"


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression.

    Args:
        expression: numbers with + - * / % ** and parentheses, e.g. "123*45"
    """
    return calculate(expression)


def call_text(name: str, arguments: dict[str, Any]) -> str:
    """A Hermes tool call, compact (a character-level model pays for every space)."""
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}, separators=(",", ":")) + "</tool_call>"


class CalculatorEnvironment(ToolEnvironment):
    """Answer an arithmetic question, calling `calculator` as often as the turn limit allows; the last turn
    without a tool call is the answer."""

    def __init__(self, *, tool_limits: ToolLimits | None = None) -> None:
        super().__init__(tool_limits=tool_limits)

    def tools(self) -> dict[str, Callable[..., Any]]:
        return {"calculator": calculator}

    def demonstration(self, task: Prompt) -> list[str]:
        """Call the calculator on the question's expression (`4*5=` -> `4*5`), then answer with its result."""
        expression = str(task.meta.get("expression") or (task.text or "")).strip().rstrip("=").strip()
        return [call_text("calculator", {"expression": expression}), str(task.answer)]
