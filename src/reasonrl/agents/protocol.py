"""The environment protocol of multi-turn rollouts: what an agent's world looks like to reasonrl.

gym/GEM-shaped and text-only, as ROLL's environment workers and TRL's `environment_factory` are: an
environment sees and returns chat messages, never token ids. The rollout side (`rollout/episodes.py`) owns
tokenization, loss masks and limits, so an environment is a few lines of plain Python that can be tested
without a model. One instance serves one episode; single-turn tasks are environments that are `done` after
their first step, so one rollout path serves both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from reasonrl.data import Prompt

Message = dict[str, str]
"""A chat message as chat templates read it: {"role": "system" | "user" | "assistant" | "tool", "content": ...}."""


@dataclass
class StepResult:
    """What one assistant turn led to. `messages`: what the environment says next (tool results as `tool`
    messages, a simulated user as `user`), appended to the episode as a template delta when not `done`;
    `reward`: this step's reward (the episode's environment reward is the sum over its steps); `info`: counts
    and, when `done`, optionally `answer`: the text the task's verifier judges (default: the last turn's text).
    Counted keys: `tool_calls`, `tool_errors` (ints)."""

    messages: list[Message] = field(default_factory=list)
    reward: float = 0.0
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Environment(Protocol):
    """One episode's world. `reset(task, seed)`: the opening messages (system, user) for a task (a data row);
    `step(assistant_text)`: the reaction to one assistant turn, decoded with its special tokens (a tool call
    reads `<tool_call>{...}</tool_call>`). Optional methods, used when present: `tools()` (name -> typed
    function, their JSON schemas go to the chat template) and `demonstration(task)` (assistant turns that solve
    the task, for a supervised warm-up, `train.sft`)."""

    def reset(self, task: Prompt, seed: int) -> list[Message]: ...

    def step(self, assistant_text: str) -> StepResult: ...


def tools_of(environment: Environment) -> dict[str, Callable[..., Any]]:
    """The environment's tools, or none."""
    tools = getattr(environment, "tools", None)
    return dict(tools()) if callable(tools) else {}
