"""`CodeProblem`: one problem of a built-in code task, before it becomes a `Prompt` scored by the `code` reward."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CodeProblem:
    """A question, the `code` verifier's reference for it, and a response that passes it.

    `reference` is the verifier's function-test form (`test`, `entry_point`, and optionally `setup` run before
    the program or `prefix` put in front of the response). `target` is what a correct response looks like,
    which the reference cannot show (it holds tests, not a solution): supervised fine-tuning learns it and
    `reasonrl tasks` prints it. `id` replaces the generated `task/stream-seed/index` id when the problem has a
    name of its own (`HumanEval/0`).
    """

    question: str
    reference: dict[str, Any]
    target: str
    meta: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
