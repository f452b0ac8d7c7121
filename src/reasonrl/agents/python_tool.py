"""The `python` environment: the policy runs Python through the code sandbox (docs/code.md) before answering.

Each call runs its program in a fresh sandbox (bubblewrap: no network, a private filesystem, rlimits, a PID
namespace) and answers with what it printed. A program that fails answers with its status and the end of its
error output, so the model can fix it in its next turn. Where no sandbox works the environment refuses to
start, unless `allow_unsafe` is set, exactly like the `code` reward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reasonrl.agents.tool_env import ToolEnvironment
from reasonrl.agents.tools import ToolLimits
from reasonrl.sandbox import Limits, isolation, run_program
from reasonrl.sandbox import Test as SandboxTest

STATUS_TEXT = {
    "rte": "the program raised or exited non-zero",
    "tle": "the program ran out of time",
    "mle": "the program ran out of memory",
    "ole": "the program printed too much",
    "ce": "the program does not compile",
}


class PythonEnvironment(ToolEnvironment):
    """Answer a task, running Python on the way. Options: `time_seconds` and `memory_mb` bound each program
    (keep `rollout.environment.tool_timeout_seconds` above time_seconds plus the sandbox's start, ~0.1 s);
    `allow_unsafe` runs programs with rlimits only where no sandbox works (never on a shared machine)."""

    def __init__(
        self,
        *,
        time_seconds: float = 2.0,
        memory_mb: int = 512,
        allow_unsafe: bool = False,
        tool_limits: ToolLimits | None = None,
    ) -> None:
        super().__init__(tool_limits=tool_limits)
        self.limits = Limits(time_seconds=time_seconds, memory_mb=memory_mb)
        self.allow_unsafe = allow_unsafe
        isolation(allow_unsafe=allow_unsafe)  # fails here, at start-up, when no sandbox works

    def tools(self) -> dict[str, Callable[..., Any]]:
        def python(code: str) -> str:
            """Run a Python program and return what it prints.

            Args:
                code: the program; print the values you need
            """
            outcome = run_program(code, [SandboxTest("stdin")], self.limits, allow_unsafe=self.allow_unsafe)[0]
            if outcome.status in STATUS_TEXT:
                detail = outcome.detail.strip()[-300:]
                raise RuntimeError(STATUS_TEXT[outcome.status] + (f": {detail}" if detail else ""))
            return outcome.output

        return {"python": python}
