"""The list of built-in tasks for `reasonrl tasks`: presets, code and agent tasks, every reasoning-gym generator.

Making one example for each of the 100+ generators takes several seconds (a few build puzzles by search),
so the reasoning-gym part is cached on disk per reasoning-gym version, under $REASONRL_CACHE (default
~/.cache/reasonrl). Presets, code and agent tasks are always built fresh: they are few and defined here.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

from reasonrl.config.data_source import DataSource
from reasonrl.config.paths import cache_dir
from reasonrl.data.code_tasks import CODE_TASKS
from reasonrl.data.errors import DataError
from reasonrl.data.gym import gym_category, gym_description, gym_task_names, option_defaults
from reasonrl.data.presets import PRESETS
from reasonrl.data.tasks import AGENT_TASKS, iter_task_prompts

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
"""Bump when `TaskInfo` or the way examples are made changes, so older cache files are not read."""


@dataclass(frozen=True)
class TaskInfo:
    """One built-in task as `reasonrl tasks` shows it; `example` is None when the task needs options first."""

    name: str
    kind: str  # "preset", "code", "agent" or "gym"
    category: str
    description: str
    example: str | None
    answer: str | None
    options: dict[str, str] = field(default_factory=dict)  # option name -> repr of its default


def _example(name: str) -> tuple[str | None, str | None]:
    """The first prompt `DataSource(source=name)` gives, and its answer; (None, None) if it needs options
    (or, for humaneval, its package). A code task's answer is its tests, so the correct response is shown."""
    try:
        # Some generators print progress to stdout; that must not end up in `reasonrl tasks` output.
        with contextlib.redirect_stdout(io.StringIO()):
            prompt = next(iter_task_prompts(DataSource(source=name), limit=1))
    except DataError:
        return None, None
    answer = prompt.meta["target"] if "code_task" in prompt.meta else prompt.answer
    return prompt.question, None if answer is None else str(answer)


def _task_info(name: str, kind: str, category: str, description: str, examples: bool, gym_task: str | None) -> TaskInfo:
    example, answer = _example(name) if examples else (None, None)
    if gym_task is not None:
        defaults = option_defaults(gym_task)
    else:  # agent tasks have no options
        defaults = CODE_TASKS[name].defaults() if name in CODE_TASKS else {}
    if kind == "preset":
        defaults.update(PRESETS[name].defaults)
    options = {option: repr(value) for option, value in defaults.items()}
    return TaskInfo(name, kind, category, description, example, answer, options)


def _gym_infos(examples: bool, cache: Path) -> list[TaskInfo]:
    filename = f"gym-tasks-v{CACHE_FORMAT}-reasoning-gym-{version('reasoning-gym')}.json"
    path = cache / filename if examples else None
    if path is not None and path.exists():
        try:
            return [TaskInfo(**item) for item in json.loads(path.read_text())]
        except (OSError, ValueError, TypeError) as exc:
            logger.debug("ignoring unreadable task cache %s: %s", path, exc)
    infos = [
        _task_info(name, "gym", gym_category(name), gym_description(name), examples, name) for name in gym_task_names()
    ]
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps([asdict(info) for info in infos]))
            partial.replace(path)
        except OSError as exc:  # a read-only home only costs the next call a few seconds
            logger.debug("cannot write task cache %s: %s", path, exc)
    return infos


def list_tasks(examples: bool = True, cache: Path | None = None) -> list[TaskInfo]:
    """Presets first, then code tasks, agent tasks and all reasoning-gym tasks by name, each with a description and
    (optionally) an example prompt with its answer. `cache` defaults to `cache_dir() / "tasks"`.
    """
    presets = [_task_info(p.name, "preset", "preset", p.description, examples, p.gym_task) for p in PRESETS.values()]
    code = [_task_info(t.name, "code", "code", t.description, examples, None) for t in CODE_TASKS.values()]
    agent = [_task_info(t.name, "agent", "agent", t.description, examples, None) for t in AGENT_TASKS.values()]
    return presets + code + agent + _gym_infos(examples, cache if cache is not None else cache_dir() / "tasks")
