"""Tools: schemas from signatures, Hermes call parsing, and every failure a call can have turned into text the
model reads (never an exception in the rollout), off the main thread and bounded in time."""

from __future__ import annotations

import threading
import time

import pytest

from reasonrl.agents import ToolCall, ToolLimits, parse_tool_calls, run_tool_calls, tool_schema
from reasonrl.agents.calculator import CalculatorEnvironment, calculate, calculator
from reasonrl.agents.registry import ENVIRONMENTS
from reasonrl.agents.tools import run_tool
from reasonrl.data import Prompt


def add(a: int, b: int = 1) -> int:
    """Add two numbers.

    Args:
        a: the first
        b: the second
    """
    return a + b


def boom(x: str) -> str:
    """Always fails.

    Args:
        x: ignored
    """
    raise RuntimeError("kaput")


def sleepy(x: str) -> str:
    """Never answers in time.

    Args:
        x: ignored
    """
    time.sleep(5)
    return x


TOOLS = {"add": add, "boom": boom, "sleepy": sleepy, "calculator": calculator}


def test_the_schema_comes_from_the_signature_and_docstring() -> None:
    schema = tool_schema(add)["function"]
    assert schema["name"] == "add" and schema["description"] == "Add two numbers."
    assert schema["parameters"]["properties"] == {
        "a": {"type": "integer", "description": "the first"},
        "b": {"type": "integer", "description": "the second"},
    }
    assert schema["parameters"]["required"] == ["a"]


def test_calls_are_parsed_in_order_and_malformed_ones_carry_their_error() -> None:
    text = (
        'I will add. <tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call> then '
        '<tool_call>{"name": "add", "arguments": "{\\"a\\": 5}"}</tool_call>'
        "<tool_call>{not json}</tool_call><tool_call>[1, 2]</tool_call>"
        '<tool_call>{"name": "add", "arguments": [1]}</tool_call>'
    )
    calls = parse_tool_calls(text)
    assert calls[:2] == [ToolCall("add", {"a": 2, "b": 3}), ToolCall("add", {"a": 5})]
    assert calls[2].error.startswith("malformed tool call JSON")
    assert calls[3].error == 'a tool call must be {"name": "...", "arguments": {...}}'
    assert calls[4].error == "tool call arguments must be a JSON object"
    assert parse_tool_calls("no call, just 42") == []


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (ToolCall("add", {"a": 2, "b": 3}), "5"),
        (ToolCall("nope", {}), "error: unknown tool 'nope'; the tools are ['add', 'boom', 'calculator', 'sleepy']"),
        (ToolCall("add", {"c": 1}), "error: bad arguments for add: missing a required argument: 'a'"),
        (ToolCall("boom", {"x": ""}), "error: RuntimeError: kaput"),
        (ToolCall("sleepy", {"x": ""}), "error: sleepy timed out after 0.2 s"),
        (ToolCall("calculator", {"expression": "__import__('os')"}), "error: ValueError: an expression may hold"),
        (ToolCall("", {}, "malformed tool call JSON (x)"), "error: malformed tool call JSON (x)"),
    ],
)
def test_every_failure_becomes_error_text(call: ToolCall, expected: str) -> None:
    outcome = run_tool(TOOLS, call, timeout=0.2)
    assert outcome.text.startswith(expected)
    assert outcome.error == expected.startswith("error:")


def test_a_hung_tool_costs_one_timeout_even_off_the_main_thread() -> None:
    """Rollouts run on the producer thread, where signal.alarm cannot work: the timeout must hold there."""
    found: list[tuple[list[dict[str, str]], int, float]] = []

    def worker() -> None:
        started = time.perf_counter()
        messages, errors = run_tool_calls(TOOLS, [ToolCall("sleepy", {"x": "a"})], ToolLimits(1, 0.2))
        found.append((messages, errors, time.perf_counter() - started))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(3)
    (messages, errors, seconds) = found[0]
    assert messages == [{"role": "tool", "content": "error: sleepy timed out after 0.2 s"}] and errors == 1
    assert seconds < 1.5


def test_calls_past_the_turn_limit_are_not_run() -> None:
    calls = [ToolCall("add", {"a": 1}), ToolCall("add", {"a": 2}), ToolCall("add", {"a": 3})]
    messages, errors = run_tool_calls(TOOLS, calls, ToolLimits(max_calls_per_turn=2))
    assert [m["content"] for m in messages] == [
        "2",
        "3",
        "error: at most 2 tool call(s) per turn; this one was not run",
    ]
    assert errors == 1


@pytest.mark.parametrize(
    ("expression", "value"),
    [("123*45", "5535"), ("7/2", "3.5"), ("(1+2)*3", "9"), ("2**10", "1024"), ("10/4*2", "5"), ("-3+1", "-2")],
)
def test_the_calculator_evaluates_arithmetic(expression: str, value: str) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('id')", "an expression may hold only digits"),
        ("9**9**9", "cannot evaluate"),
        ("1/0", "division by zero"),
        ("(((", "cannot evaluate"),
        ("1" * 65, "at most 64 characters"),
    ],
)
def test_the_calculator_refuses_what_is_not_bounded_arithmetic(expression: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        calculate(expression)
    assert time.perf_counter() - started < 1.0


def test_the_calculator_environment_steps_and_demonstrates() -> None:
    env = CalculatorEnvironment()
    task = Prompt(id="t", answer="408", task="exact", text="12*34=")
    assert env.reset(task, seed=0) == [{"role": "user", "content": "12*34="}]
    turns = env.demonstration(task)
    assert turns == ['<tool_call>{"name":"calculator","arguments":{"expression":"12*34"}}</tool_call>', "408"]
    first = env.step(turns[0])
    assert first.messages == [{"role": "tool", "content": "408"}] and not first.done
    assert first.info == {"tool_calls": 1, "tool_errors": 0}
    last = env.step("408")
    assert last.done and last.info == {"answer": "408"} and last.reward == 0.0


def test_environment_names_and_options_are_checked() -> None:
    with pytest.raises(ValueError, match="did you mean 'calculator'"):
        ENVIRONMENTS.known("calculater")
    with pytest.raises(ValueError, match="has no option 'bogus'"):
        ENVIRONMENTS.check("calculator", {"bogus": 1})
    with pytest.raises(ValueError, match="is set by reasonrl"):
        ENVIRONMENTS.check("calculator", {"tool_limits": None})


@pytest.fixture
def sandboxed() -> None:
    from reasonrl.sandbox import SandboxUnavailable, isolation

    try:
        isolation()
    except SandboxUnavailable as exc:
        pytest.skip(f"no sandbox works on this machine: {exc}")


def test_the_python_environment_runs_code_in_the_sandbox(sandboxed: None) -> None:
    from reasonrl.agents.python_tool import PythonEnvironment

    env = PythonEnvironment(time_seconds=1.0, tool_limits=ToolLimits(1, 5.0))
    env.reset(Prompt(id="t", answer="6", task="exact", text="1+2+3?"), seed=0)
    call = '<tool_call>{"name": "python", "arguments": {"code": "%s"}}</tool_call>'
    assert env.step(call % "print(sum([1, 2, 3]))").messages == [{"role": "tool", "content": "6\n"}]
    failed = env.step(call % "import socket; socket.create_connection(('1.1.1.1', 80))").messages[0]["content"]
    assert failed.startswith("error: RuntimeError: the program raised or exited non-zero")
    hung = env.step(call % "while True: pass")
    assert hung.messages[0]["content"].startswith("error: RuntimeError: the program ran out of time")
    assert hung.info == {"tool_calls": 1, "tool_errors": 1}
