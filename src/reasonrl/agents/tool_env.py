"""`ToolEnvironment`: an environment whose world is a set of tools, the base of the built-in ones.

The policy answers a task, calling tools on the way: a turn with `<tool_call>` blocks gets their results as
`tool` messages and another turn; a turn without any ends the episode, and its text is the answer the task's
verifier judges. Subclasses give `tools()` and, optionally, `demonstration(task)` for a warm-up. The
per-turn limits arrive as `tool_limits` (reasonrl fills it from `rollout.environment`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reasonrl.agents.protocol import Message, StepResult
from reasonrl.agents.tools import ToolLimits, parse_tool_calls, run_tool_calls
from reasonrl.data import Prompt


class ToolEnvironment:
    """Subclass and define `tools()`; keyword-only `__init__` parameters are the environment's options."""

    def __init__(self, *, tool_limits: ToolLimits | None = None) -> None:
        self.tool_limits = tool_limits or ToolLimits()
        self.task: Prompt | None = None

    def tools(self) -> dict[str, Callable[..., Any]]:
        raise NotImplementedError(f"{type(self).__name__} must define tools() -> {{name: function}}")

    def reset(self, task: Prompt, seed: int) -> list[Message]:
        """The task's own chat, or its question as one user turn (`data.format` adds system prompt and
        instruction)."""
        self.task = task
        if task.messages is not None:
            return [dict(m) for m in task.messages]
        return [{"role": "user", "content": task.text or ""}]

    def step(self, assistant_text: str) -> StepResult:
        calls = parse_tool_calls(assistant_text)
        if not calls:
            return StepResult(done=True, info={"answer": assistant_text})
        messages, errors = run_tool_calls(self.tools(), calls, self.tool_limits)
        return StepResult(messages, info={"tool_calls": len(calls), "tool_errors": errors})
