"""Prompts from built-in tasks: presets, code tasks, agent tasks and reasoning-gym generators, selected by name."""

from __future__ import annotations

import difflib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reasonrl.config.data_source import DataSource, FieldMap
from reasonrl.data.code_tasks import CODE_TASKS, CodeTask, iter_code_prompts
from reasonrl.data.errors import DataError
from reasonrl.data.gym import gym_seed, gym_task_names, make_gym_dataset
from reasonrl.data.presets import PRESETS, Preset
from reasonrl.data.records import Prompt

DEFAULT_TASK_SIZE = 1000
"""Prompts generated for a task when `DataSource.size` is not set."""

PACKAGE = Path(__file__).resolve().parents[1]
"""The installed `reasonrl` folder: agent tasks' question files ship in it."""


@dataclass(frozen=True)
class AgentTask:
    """A fixed question set of an agent environment: JSON lines of {question, answer, meta} in the package
    (`file`), judged by exact match. Its generator lives with the environment in `reasonrl.agents`, which
    imports this package, so the file is the link. A seed shuffles the set, and the held-out stream is the
    questions that training did not draw."""

    name: str
    description: str
    file: str


AGENT_TASKS: dict[str, AgentTask] = {
    task.name: task
    for task in (
        AgentTask(
            "search_qa",
            "300 two-hop questions over a small corpus, for the search agent (rollout.environment: search): "
            "Founder of Zikeli's town? -> Bekiz, found by searching Zikeli, then the town it names (exact)",
            "agents/data/search_questions.jsonl",
        ),
    )
}


@dataclass(frozen=True)
class TaskRef:
    """A resolved task name: a code or agent task, or the reasoning-gym generator behind it and the preset if it
    is one."""

    name: str
    gym_task: str | None
    preset: Preset | None = None
    code: CodeTask | None = None
    agent: AgentTask | None = None

    @property
    def kind(self) -> str:
        """How `reasonrl tasks` and load reports label it: preset, code, agent or gym."""
        return "preset" if self.preset else "code" if self.code else "agent" if self.agent else "gym"


def resolve_task(name: str, config_key: str = "data.train") -> TaskRef:
    """The task called `name`; an unknown name is a `DataError` suggesting the closest known names."""
    if name in PRESETS:
        return TaskRef(name, PRESETS[name].gym_task, PRESETS[name])
    if name in CODE_TASKS:
        return TaskRef(name, None, code=CODE_TASKS[name])
    if name in AGENT_TASKS:
        return TaskRef(name, None, agent=AGENT_TASKS[name])
    known = gym_task_names()
    if name in known:
        return TaskRef(name, name)
    close = difflib.get_close_matches(name, [*PRESETS, *CODE_TASKS, *AGENT_TASKS, *known], n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    count = len(PRESETS) + len(CODE_TASKS) + len(AGENT_TASKS) + len(known)
    raise DataError(
        f"{config_key}.source: unknown task {name!r}.{hint} `reasonrl tasks` lists the "
        f"{count} built-in tasks; a file source needs a path with its extension "
        f"(.jsonl, .json, .parquet) or an existing HF dataset folder."
    )


def iter_task_prompts(
    source: DataSource, limit: int, stream: str = "train", config_key: str = "data.train"
) -> Iterator[Prompt]:
    """Up to `limit` prompts of the task in `source`, in order; `stream` separates train from held-out.

    Prompts are made one at a time, so a caller that stops early (held-out filtering) pays only for what it
    used; `limit` is still needed up front because some generators precompute their whole dataset.

    The prompt's `task` (its verifier) is `source.reward` when set, else the preset's verifier, `code` for a
    code task, `exact` for an agent task, else `gym`, which scores with reasoning-gym's own scorer from
    `meta["gym_entry"]`.
    """
    task = resolve_task(source.source, config_key)
    if task.code is not None:
        yield from iter_code_prompts(task.code, source, limit, stream, config_key)
        return
    if task.agent is not None:
        yield from iter_agent_prompts(task.agent, source, limit, stream, config_key)
        return
    assert task.gym_task is not None  # every task that is not a code or agent task has a generator
    options = {**(task.preset.defaults if task.preset else {}), **source.options}
    seed = gym_seed(source.seed, stream)
    dataset = make_gym_dataset(task.gym_task, options, seed, size=limit, config_key=config_key)
    verifier = source.reward or (task.preset.verifier if task.preset else "gym")
    for index in range(limit):
        try:
            entry = dataset[index]
        except Exception as exc:  # a generator bug or an option value of the wrong type, found only now
            raise DataError(
                f"task {task.name!r} failed to generate problem {index} with options {options}: {exc!r}. "
                f"Check {config_key}.options"
            ) from exc
        text = task.preset.render(entry) if task.preset else entry["question"]
        meta = {"gym_task": task.gym_task, "gym_seed": seed, "gym_index": index, "gym_entry": entry}
        if task.preset:
            meta["preset"] = task.name
        prompt_id = f"{task.name}/{stream}-{source.seed}/{index}"
        yield Prompt(id=prompt_id, text=text, answer=entry["answer"], task=verifier, meta=meta)


def iter_agent_prompts(
    task: AgentTask, source: DataSource, limit: int, stream: str, config_key: str
) -> Iterator[Prompt]:
    """Up to `limit` of the task's questions, in an order drawn from the seed and stream; a question's id is its
    row number, the same in every stream."""
    if source.options:
        raise DataError(f"task {task.name!r} has no options, got {sorted(source.options)}; remove {config_key}.options")
    rows = [json.loads(line) for line in (PACKAGE / task.file).read_text(encoding="utf-8").splitlines()]
    order = list(range(len(rows)))
    random.Random(f"{task.name}:{stream}:{source.seed}").shuffle(order)
    for index in order[:limit]:
        row = rows[index]
        yield Prompt(
            id=f"{task.name}/{index}",
            text=row["question"],
            answer=row["answer"],
            task=source.reward or "exact",
            meta={"agent_task": task.name, **row["meta"]},
        )


def load_task_prompts(source: DataSource, config_key: str = "data.train") -> list[Prompt]:
    """The first `source.size` (default 1000) prompts of the task; the same for the same seed and options."""
    # Compared with the defaults, not with what was set: a resolved config (config.yaml of a run) spells out
    # every field, the empty column mapping included.
    if source.split is not None or source.fields != FieldMap():
        raise DataError(
            f"{config_key}: `split` and `fields` apply to dataset files, but {source.source!r} is a built-in "
            f"task; remove them, or point {config_key}.source at a file"
        )
    return list(iter_task_prompts(source, source.size or DEFAULT_TASK_SIZE, "train", config_key))
