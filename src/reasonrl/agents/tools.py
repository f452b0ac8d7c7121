"""Tools: typed Python functions the policy calls in the Hermes/Qwen format, run off the main thread.

A tool is a plain function with type hints and a Google-style docstring; its JSON schema comes from the
signature (`transformers.utils.get_json_schema`, the function chat templates' `tools=` argument reads, so it
is not rewritten here). The model calls tools as

    <tool_call>{"name": "calculator", "arguments": {"expression": "12*34"}}</tool_call>

and each result goes back as a `tool` message. Nothing a call does reaches the rollout as an exception:
an unknown tool, malformed JSON, wrong arguments, an exception or a timeout becomes `error: ...` text the
model reads, and is counted.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reasonrl.agents.protocol import Message

TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


@dataclass(frozen=True)
class ToolLimits:
    """Per-turn limits of tool use (`rollout.environment`): calls past `max_calls_per_turn` are not run (the
    model is told so); a call that has not returned after `timeout_seconds` is abandoned with an error."""

    max_calls_per_turn: int = 1
    timeout_seconds: float = 1.0


@dataclass(frozen=True)
class ToolCall:
    """One parsed call; `error` is set (and name/arguments may be empty) when the call could not be parsed."""

    name: str
    arguments: dict[str, Any]
    error: str = ""


@dataclass(frozen=True)
class ToolOutcome:
    """The text the model reads back and whether it is an error."""

    text: str
    error: bool


def tool_schema(function: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAI-style schema of a typed, documented function (what `apply_chat_template(tools=...)` reads)."""
    from transformers.utils import get_json_schema

    return get_json_schema(function)


def parse_tool_calls(text: str) -> list[ToolCall]:
    """Every `<tool_call>...</tool_call>` in `text`, in order; malformed ones carry an error."""
    calls = []
    for match in TOOL_CALL.finditer(text):
        body = match.group(1).strip()
        try:
            payload = json.loads(body)
        except json.JSONDecodeError as exc:
            calls.append(ToolCall("", {}, f"malformed tool call JSON ({exc.msg} at character {exc.pos})"))
            continue
        if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
            calls.append(ToolCall("", {}, 'a tool call must be {"name": "...", "arguments": {...}}'))
            continue
        arguments = payload.get("arguments", {})
        if isinstance(arguments, str):  # some models emit the arguments as a JSON string
            with contextlib.suppress(json.JSONDecodeError):
                arguments = json.loads(arguments)
        if not isinstance(arguments, dict):
            calls.append(ToolCall(payload["name"], {}, "tool call arguments must be a JSON object"))
            continue
        calls.append(ToolCall(payload["name"], arguments))
    return calls


def run_tool(tools: Mapping[str, Callable[..., Any]], call: ToolCall, timeout: float) -> ToolOutcome:
    """Run one call in a daemon thread and wait at most `timeout` seconds. A thread, not `signal.alarm`
    (which works only on the main thread, and rollouts run on the producer's): a call that never returns
    keeps its thread but is abandoned, so a hung tool costs one timeout, never the run."""
    if call.error:
        return ToolOutcome(f"error: {call.error}", True)
    function = tools.get(call.name)
    if function is None:
        return ToolOutcome(f"error: unknown tool {call.name!r}; the tools are {sorted(tools)}", True)
    try:
        inspect.signature(function).bind(**call.arguments)
    except TypeError as exc:
        return ToolOutcome(f"error: bad arguments for {call.name}: {exc}", True)
    result: list[Any] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(function(**call.arguments))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"tool-{call.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return ToolOutcome(f"error: {call.name} timed out after {timeout:g} s", True)
    if failure:
        exc = failure[0]
        return ToolOutcome(f"error: {type(exc).__name__}: {exc}", True)
    value = result[0]
    return ToolOutcome(value if isinstance(value, str) else json.dumps(value), False)


def run_tool_calls(
    tools: Mapping[str, Callable[..., Any]], calls: list[ToolCall], limits: ToolLimits
) -> tuple[list[Message], int]:
    """The `tool` messages answering `calls` (one per call, in order) and how many were errors. Calls past the
    per-turn limit are answered with an error and not run."""
    messages, errors = [], 0
    for index, call in enumerate(calls):
        if index >= limits.max_calls_per_turn:
            outcome = ToolOutcome(
                f"error: at most {limits.max_calls_per_turn} tool call(s) per turn; this one was not run", True
            )
        else:
            outcome = run_tool(tools, call, limits.timeout_seconds)
        errors += outcome.error
        messages.append({"role": "tool", "content": outcome.text})
    return messages, errors
