"""The `code` verifier: run the response's program against the task's tests in a sandbox, score the share passed.

The program is the last fenced ```python block of the response (the whole response when there is none),
after the reference's optional `prefix`. The reference is JSON (a string or a dict) in one of two forms:

- stdin/stdout tests, the APPS / TACO / LiveCodeBench `input_output` form: `{"inputs": [...], "outputs": [...]}`;
- function tests, the HumanEval / MBPP form: `{"test": "<asserts, or def check(candidate): ...>",
  "entry_point": "name", "setup": "<optional code run before the program, e.g. imports>"}`.

Expected outputs never enter the sandbox. A stdin test's output comes back and is compared here. Each assert
of a function test is parsed: the value forms (`f(x) == LITERAL`, `abs(f(x) - LITERAL) < EPS`, `f(x)`,
`not f(x)`) are evaluated inside as `f(x)`, only the `repr` of a plain built-in value comes back, and the
comparison happens here, so `sys.exit(0)`, `os._exit(0)`, objects that equal everything and an overwritten
`check` all score nothing. Asserts of any other shape (loops, helper functions) run inside as one test whose
pass is only the absence of an error: a weaker check, needed by 12 of HumanEval's 164 problems.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import logging
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from reasonrl.rewards.extract import as_text
from reasonrl.sandbox import Isolation, Limits, Test, TestOutcome, isolation, run_program

if TYPE_CHECKING:
    from reasonrl.data import Prompt

logger = logging.getLogger(__name__)

Scoring = Literal["fraction", "all"]
_FENCE = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_BUILTIN_NAMES = frozenset(dir(builtins))


def code_verifier(
    *,
    timeout_seconds: float = 2.0,
    memory_mb: int = 1024,
    scoring: Scoring = "fraction",
    float_tolerance: float = 0.0,
    max_tests: int = 0,
    allow_unsafe_code: bool = False,
    python: str | None = None,
) -> Callable[[Any, Any, Mapping[str, Any] | None], float]:
    """Options of `get_verifier("code", ...)`.

    timeout_seconds: wall-clock limit of each test (CPU limit one second more); the first test over it ends
        the run, the rest count as failed.
    memory_mb: address-space limit of each test's process.
    scoring: fraction = the share of tests passed; all = 1 only when every test passes.
    float_tolerance: compare numbers (output tokens, returned values) with this relative and absolute
        tolerance; 0 = exactly.
    max_tests: run at most this many tests per response (a fixed subset per response and task, so a response
        always gets the same score); 0 = all.
    allow_unsafe_code: when no sandbox works on this machine, run programs as plain processes with rlimits
        only, instead of refusing to start. Only for code you trust.
    python: the interpreter that runs programs inside the sandbox (default /usr/bin/python3); its prefix is
        mounted read-only.
    """
    if not (isinstance(timeout_seconds, int | float) and 0 < timeout_seconds <= 600):
        raise ValueError(f"code: timeout_seconds must be in (0, 600], got {timeout_seconds!r}")
    if not (isinstance(memory_mb, int) and 64 <= memory_mb <= 1 << 20):
        raise ValueError(f"code: memory_mb must be an integer >= 64, got {memory_mb!r}")
    if scoring not in ("fraction", "all"):
        raise ValueError(f"code: scoring must be 'fraction' or 'all', got {scoring!r}")
    if not (isinstance(float_tolerance, int | float) and 0 <= float_tolerance < 1):
        raise ValueError(f"code: float_tolerance must be in [0, 1), got {float_tolerance!r}")
    if not (isinstance(max_tests, int) and max_tests >= 0):
        raise ValueError(f"code: max_tests must be an integer >= 0 (0 = all), got {max_tests!r}")
    found = isolation(python, allow_unsafe=allow_unsafe_code)  # refuses here, at start-up, not per sample
    limits = Limits(time_seconds=float(timeout_seconds), memory_mb=memory_mb)
    return partial(
        score_code,
        limits=limits,
        scoring=scoring,
        tolerance=float(float_tolerance),
        max_tests=max_tests,
        python=found.python,
        allow_unsafe=allow_unsafe_code,
    )


def score_code(
    response: Any,
    reference: Any,
    meta: Mapping[str, Any] | None,
    *,
    limits: Limits,
    scoring: Scoring,
    tolerance: float,
    max_tests: int,
    python: str,
    allow_unsafe: bool,
) -> float:
    """The response's score on the reference's tests (see the module docstring)."""
    suite = parse_reference(reference)
    program = suite.prefix + extract_program(as_text(response))
    tests = suite.tests
    if max_tests and len(tests) > max_tests:
        seed = hashlib.sha256((program + "\0" + json.dumps(suite.key)).encode()).digest()
        chosen = sorted(random.Random(seed).sample(range(len(tests)), max_tests))
        tests = [tests[i] for i in chosen]
    outcomes = run_program(
        program,
        [test for test, _ in tests],
        limits,
        setup=suite.setup,
        entry_point=suite.entry_point,
        python=python,
        allow_unsafe=allow_unsafe,
    )
    passed = sum(check(outcome, tolerance) for (_, check), outcome in zip(tests, outcomes, strict=True))
    if scoring == "all":
        return float(passed == len(tests))
    return passed / len(tests)


def extract_program(response: str) -> str:
    """The last fenced ```python block (an unclosed last fence runs to the end), else the whole response."""
    blocks = _FENCE.findall(response)
    return blocks[-1] if blocks else response


Check = Callable[[TestOutcome, float], bool]


@dataclass(frozen=True)
class TestSuite:
    """A reference parsed into sandbox tests, each with the host-side check of its outcome."""

    tests: list[tuple[Test, Check]]
    setup: str = ""
    entry_point: str = ""
    prefix: str = ""
    key: Any = None  # the reference as JSON, to seed the choice of `max_tests`


def parse_reference(reference: Any) -> TestSuite:
    """The tests of a reference; a ValueError saying what is wrong with a malformed one (a data error)."""
    data = reference
    if isinstance(reference, str):
        try:
            data = json.loads(reference)
        except json.JSONDecodeError as exc:
            raise ValueError(f"code: the reference answer is not JSON ({exc}); see docs/code.md for its forms") from exc
    if not isinstance(data, Mapping):
        raise ValueError(f"code: the reference must be a JSON object, got {type(data).__name__}")
    prefix = _text(data, "prefix")
    setup = _text(data, "setup")
    if "inputs" in data or "outputs" in data:
        inputs, outputs = data.get("inputs"), data.get("outputs")
        if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs) or not inputs:
            raise ValueError("code: `inputs` and `outputs` must be non-empty lists of the same length")
        pairs = zip(inputs, outputs, strict=True)
        tests = [(Test("stdin", stdin=_as_str(i)), partial(_same_output, _as_str(o))) for i, o in pairs]
        return TestSuite(tests, setup, "", prefix, data)
    if "test" in data:
        entry_point = _text(data, "entry_point")
        if not entry_point.isidentifier():
            raise ValueError(f"code: function tests need `entry_point`, a function name, got {entry_point!r}")
        tests, imports = function_tests(_text(data, "test"), entry_point)
        return TestSuite(tests, setup + ("\n" + imports if imports else ""), entry_point, prefix, data)
    raise ValueError(
        "code: the reference needs either `inputs`/`outputs` (stdin tests) or `test`/`entry_point` (function tests)"
    )


def function_tests(source: str, entry_point: str) -> tuple[list[tuple[Test, Check]], str]:
    """The tests of assert-style test code, and its import lines (which call tests may need). Every assert in
    a value form becomes a call test checked here; if any statement is of another shape, the whole test code
    runs in the sandbox as one assert test instead."""
    try:
        module = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"code: the test code does not parse: {exc}") from exc
    imports = [node for node in module.body if isinstance(node, ast.Import | ast.ImportFrom)]
    imported = {(alias.asname or alias.name).split(".")[0] for node in imports for alias in node.names}
    check = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    statements = check.body if check is not None else [n for n in module.body if isinstance(n, ast.Assert)]
    callees = {"candidate", entry_point}
    allowed = callees | imported | _BUILTIN_NAMES
    tests: list[tuple[Test, Check]] = []
    for statement in statements:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring
        parsed = _value_test(statement, callees, allowed) if isinstance(statement, ast.Assert) else None
        if parsed is None:
            code = source + ("\ncheck(candidate)\n" if check is not None else "")
            return [(Test("assert", code=code), _passed)], ""
        if parsed is not _NO_OP:
            tests.append(parsed)
    if not tests:
        raise ValueError("code: the test code holds no assert about the function")
    return tests, "\n".join(ast.unparse(node) for node in imports)


_NO_OP: Any = object()


def _value_test(statement: ast.Assert, callees: set[str], allowed: set[str]) -> Any:
    """(call test, check) for an assert in a value form; `_NO_OP` for `assert True`; None for other shapes."""
    test = statement.test
    if isinstance(test, ast.Constant) and test.value is True:
        return _NO_OP
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right, op = test.left, test.comparators[0], test.ops[0]
        if isinstance(op, ast.Eq):
            for call, other in ((left, right), (right, left)):
                expected = _literal(other)
                if expected is not _NOT_LITERAL and _calls(call, callees, allowed):
                    return _call(call), partial(_equals, expected)
        if isinstance(op, ast.Lt | ast.LtE) and _is_abs_difference(left):
            eps = _literal(right)
            a, b = left.args[0].left, left.args[0].right  # type: ignore[attr-defined]
            for call, other in ((a, b), (b, a)):
                expected = _literal(other)
                if _number(eps) and _number(expected) and _calls(call, callees, allowed):
                    return _call(call), partial(_close, expected, eps, isinstance(op, ast.LtE))
        return None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and _calls(test.operand, callees, allowed):
        return _call(test.operand), partial(_truth, False)
    if _calls(test, callees, allowed):
        return _call(test), partial(_truth, True)
    return None


_NOT_LITERAL: Any = object()


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_LITERAL


def _calls(node: ast.expr, callees: set[str], allowed: set[str]) -> bool:
    """Whether `node` calls the function under test and names nothing the sandbox would not have."""
    names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    calls = any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in callees for n in ast.walk(node)
    )
    return calls and all(name in allowed for name in names)


def _is_abs_difference(node: ast.expr) -> bool:
    if not (isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords):
        return False
    func = node.func
    is_abs = (isinstance(func, ast.Name) and func.id == "abs") or (
        isinstance(func, ast.Attribute) and func.attr == "fabs" and isinstance(func.value, ast.Name)
    )
    argument = node.args[0]
    return is_abs and isinstance(argument, ast.BinOp) and isinstance(argument.op, ast.Sub)


def _call(node: ast.expr) -> Test:
    return Test("call", expression=ast.unparse(node))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---- host-side checks --------------------------------------------------------------------------------------
def _value(outcome: TestOutcome) -> Any:
    """The returned value, or `_NOT_LITERAL` when the program produced none or not a plain one."""
    if outcome.status != "ok" or not outcome.value:
        return _NOT_LITERAL
    try:
        return ast.literal_eval(outcome.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_LITERAL


def _equals(expected: Any, outcome: TestOutcome, tolerance: float) -> bool:
    actual = _value(outcome)
    return actual is not _NOT_LITERAL and _same(actual, expected, tolerance)


def _same(actual: Any, expected: Any, tolerance: float) -> bool:
    if tolerance and _number(actual) and _number(expected):
        return math.isclose(actual, expected, rel_tol=tolerance, abs_tol=tolerance)
    if tolerance and isinstance(actual, list | tuple) and type(actual) is type(expected):
        pairs = zip(actual, expected, strict=False)  # lengths are compared first
        return len(actual) == len(expected) and all(_same(a, e, tolerance) for a, e in pairs)
    try:
        return bool(actual == expected)
    except Exception:  # comparing deeply nested literals can recurse too far
        return False


def _close(expected: float, eps: float, inclusive: bool, outcome: TestOutcome, tolerance: float) -> bool:
    actual = _value(outcome)
    if not _number(actual):
        return False
    gap = abs(actual - expected)
    return gap <= eps if inclusive else gap < eps


def _truth(wanted: bool, outcome: TestOutcome, tolerance: float) -> bool:
    actual = _value(outcome)
    return actual is not _NOT_LITERAL and bool(actual) is wanted


def _passed(outcome: TestOutcome, tolerance: float) -> bool:
    return outcome.status == "ok" and outcome.value == "passed"


def _same_output(expected: str, outcome: TestOutcome, tolerance: float) -> bool:
    """Whitespace-token comparison, the usual judge rule; numbers within `tolerance` when it is set."""
    if outcome.status != "ok":
        return False
    got, want = outcome.output.split(), expected.split()
    if len(got) != len(want):
        return False
    return all(g == w or (tolerance and _close_tokens(g, w, tolerance)) for g, w in zip(got, want, strict=True))


def _close_tokens(got: str, want: str, tolerance: float) -> bool:
    try:
        return math.isclose(float(got), float(want), rel_tol=tolerance, abs_tol=tolerance)
    except ValueError:
        return False


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"code: the reference's `{key}` must be a string, got {type(value).__name__}")
    return value


def _as_str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def record_sandbox(
    terms: Sequence[tuple[str, Mapping[str, Any]]], prompts: Sequence[Prompt], directory: Path
) -> Isolation | None:
    """Say once, and keep in `directory/sandbox.json`, what isolation model-written code runs under, when a
    `code` reward is in use: among `terms` (the config's `(verifier name, options)`), else as the prompts'
    own verifier. Also refuses, before anything else starts, a machine where no sandbox works (unless the
    reward allows unsafe code). None when no `code` reward is used."""
    terms = list(terms)
    if not terms:
        first = next((p for p in prompts if p.task == "code"), None)
        terms = [] if first is None else [("code", dict(first.meta.get("verifier_options", {})))]
    for name, options in terms:
        if name == "code":
            found = isolation(options.get("python"), allow_unsafe=bool(options.get("allow_unsafe_code", False)))
            logger.warning("code reward sandbox: %s", found.describe())
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "sandbox.json").write_text(json.dumps(found.to_json(), indent=2) + "\n", encoding="utf-8")
            return found
    return None
