"""The `code` verifier: program extraction, both reference forms, the assert forms it checks on the host, and
its options, with exact scores. The sandbox itself is tested in tests/sandbox."""

from __future__ import annotations

import json

import pytest

from reasonrl.rewards.code import extract_program, function_tests, parse_reference
from reasonrl.rewards.registry import check_verifier, get_verifier
from reasonrl.sandbox import SandboxUnavailable, isolation

try:
    isolation()
except SandboxUnavailable as exc:  # a machine without user namespaces: nothing here can run
    pytest.skip(f"no sandbox on this machine: {exc}", allow_module_level=True)

SUM = {"inputs": ["1 2\n", "3 4\n", "10 -5\n", "0 0\n"], "outputs": ["3\n", "7\n", "5\n", "0\n"]}
HUMANEVAL_STYLE = {
    "test": (
        "METADATA = {'author': 'x'}\n\n"
        "def check(candidate):\n"
        "    assert candidate(2, 3) == 5\n"
        "    assert 9 == candidate(4, 5)\n"
        "    assert abs(candidate(0.1, 0.2) - 0.3) < 1e-9\n"
        "    assert candidate(1, 0)\n"
        "    assert not candidate(0, 0)\n"
        "    assert True\n"
    ),
    "entry_point": "add",
}


@pytest.fixture(scope="module")
def code():
    return get_verifier("code", timeout_seconds=2.0)


def fenced(program: str) -> str:
    return f"Here is my solution.\n```python\n{program}\n```\nDone."


def test_program_is_the_last_python_block_or_the_whole_response():
    response = "```python\nprint(1)\n```\ntext\n```py\nprint(2)\n```"
    assert extract_program(response) == "print(2)\n"
    assert extract_program("print(3)") == "print(3)"
    assert extract_program("```python\nprint(4)\n") == "print(4)\n"  # an unclosed last fence runs to the end


def test_stdin_tests_score_the_share_passed(code):
    assert code(fenced("a, b = map(int, input().split())\nprint(a + b)"), SUM) == 1.0
    assert code(fenced("a, b = map(int, input().split())\nprint(abs(a) + abs(b))"), json.dumps(SUM)) == 0.75
    assert code(fenced("print(0)"), SUM) == 0.25
    assert code(fenced("def broken(:"), SUM) == 0.0


def test_scoring_all_and_float_tolerance():
    strict = get_verifier("code", scoring="all")
    half = "a, b = map(int, input().split())\nprint(abs(a) + abs(b))"
    assert strict(fenced(half), SUM) == 0.0
    reference = {"inputs": ["1\n", "2\n"], "outputs": ["0.3333333\n", "0.6666667\n"]}
    program = fenced("print(int(input()) / 3)")
    assert get_verifier("code")(program, reference) == 0.0
    assert get_verifier("code", float_tolerance=1e-6)(program, reference) == 1.0


def test_function_tests_check_values_on_the_host(code):
    assert code(fenced("def add(a, b):\n    return a + b"), HUMANEVAL_STYLE) == 1.0
    # Wrong on the falsy form only (1 of 5 counted asserts; `assert True` is not a test).
    assert code(fenced("def add(a, b):\n    return a + b or 1"), HUMANEVAL_STYLE) == 0.8
    mbpp = {"test": "assert add(1, 1) == 2\nassert add(2, 2) == 4\nassert add(-1, 1) == 0", "entry_point": "add"}
    assert code(fenced("def add(a, b):\n    return 2 * a"), mbpp) == pytest.approx(2 / 3)


def test_value_forms_are_parsed_and_other_shapes_run_inside_as_one_weak_test():
    tests, imports = function_tests(HUMANEVAL_STYLE["test"], "add")
    assert [test.kind for test, _ in tests] == ["call"] * 5
    assert [test.expression for test, _ in tests] == [
        "candidate(2, 3)",
        "candidate(4, 5)",
        "candidate(0.1, 0.2)",
        "candidate(1, 0)",
        "candidate(0, 0)",
    ]
    assert imports == ""
    loop = "import math\ndef check(candidate):\n    for x in range(3):\n        assert candidate(x, 0) == x\n"
    tests, _ = function_tests(loop, "add")
    assert [test.kind for test, _ in tests] == ["assert"]
    assert tests[0][0].code.endswith("check(candidate)\n")
    # A call whose arguments use a name the sandbox would not have is not a value form either.
    local = "def check(candidate):\n    y = 2\n    assert candidate(y, 1) == 3\n"
    assert [t.kind for t, _ in function_tests(local, "add")[0]] == ["assert"]


def test_exit_and_always_equal_hacks_score_nothing(code):
    hacks = [
        "import sys\nsys.exit(0)",
        "import os\nos._exit(0)",
        "class Any:\n    def __eq__(self, other):\n        return True\n    def __bool__(self):\n        return True\n"
        "def add(a, b):\n    return Any()",
        "class Five(int):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Five(5)",
        "def check(candidate):\n    pass\ndef add(a, b):\n    return -1",
    ]
    equalities = {
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(4, 5) == 9\n",
        "entry_point": "add",
    }
    for hack in hacks:
        assert code(fenced(hack), equalities) == 0.0, hack


def test_opaque_asserts_pass_only_when_the_whole_check_runs():
    reference = {"test": "def check(candidate):\n    for x in range(3):\n        assert candidate(x) == 2 * x\n"}
    reference["entry_point"] = "double"
    code = get_verifier("code")
    assert code(fenced("def double(x):\n    return 2 * x"), reference) == 1.0
    assert code(fenced("def double(x):\n    return x + 2"), reference) == 0.0
    assert code(fenced("import sys\ndef double(x):\n    sys.exit(0)"), reference) == 0.0


def test_prefix_and_setup_are_joined_to_the_program(code):
    reference = {
        "test": "assert f(2) == [2, 2]\nassert f(0) == []",
        "entry_point": "f",
        "setup": "from typing import List",
        "prefix": "def f(x: int) -> List[int]: return ",
    }
    assert code("[x] * x", reference) == 1.0
    assert code("[x]", reference) == 0.0


def test_max_tests_runs_a_fixed_subset_per_response():
    reference = {"inputs": [f"{i}\n" for i in range(10)], "outputs": [f"{i}\n" for i in range(5)] + ["x\n"] * 5}
    sampled = get_verifier("code", max_tests=4)
    program = fenced("print(input())")
    score = sampled(program, reference)
    assert score in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert all(sampled(program, reference) == score for _ in range(3))  # the same subset every time
    assert get_verifier("code")(program, reference) == 0.5


def test_the_first_timeout_ends_the_run(code):
    reference = {"inputs": ["1\n", "2\n", "3\n"], "outputs": ["1\n", "2\n", "3\n"]}
    program = fenced("x = int(input())\nwhile x == 2:\n    pass\nprint(x)")
    assert get_verifier("code", timeout_seconds=0.5)(program, reference) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("not json", "not JSON"),
        ([1, 2], "must be a JSON object"),
        ({"inputs": ["1"], "outputs": []}, "same length"),
        ({"test": "assert f(1) == 1"}, "entry_point"),
        ({"test": "assert (", "entry_point": "f"}, "does not parse"),
        ({"test": "x = 1", "entry_point": "f"}, "no assert"),
        ({"tests": []}, "either `inputs`/`outputs`"),
    ],
)
def test_malformed_references_name_the_problem(reference, message):
    with pytest.raises(ValueError, match=message):
        parse_reference(reference)


def test_options_are_checked_when_the_config_loads():
    check_verifier("code", {"timeout_seconds": 1.5, "scoring": "all", "max_tests": 3})
    with pytest.raises(ValueError, match="timout"):
        check_verifier("code", {"timout": 1})
    with pytest.raises(ValueError, match="scoring"):
        get_verifier("code", scoring="some")
    with pytest.raises(ValueError, match="timeout_seconds"):
        get_verifier("code", timeout_seconds=0)
