"""Where prompts come from: a built-in task or a file, written as a mapping or as one spec string.

The spec string is what users type on the command line (`reasonrl data preview gsm8k:test.jsonl?size=5`):
`[KIND:]SOURCE[?key=value&key=value]`. Keys that name a `DataSource` field set that field; every other key
is an option of the task generator. Values are read as YAML scalars, so `size=5` is an int and
`skip_invalid=true` a bool.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import parse_qsl

import yaml
from pydantic import Field, field_validator, model_validator

from reasonrl.config.base import Section

SourceKind = Literal["auto", "task", "jsonl", "parquet", "gsm8k", "math", "hf"]
SOURCE_KINDS: tuple[str, ...] = ("auto", "task", "jsonl", "parquet", "gsm8k", "math", "hf")


class FieldMap(Section):
    """Which column of a file row holds what; `None` lets the loader try the usual names."""

    prompt: str | None = Field(
        None, description="Column with the question text (auto: question, problem, prompt, input)."
    )
    answer: str | None = Field(
        None, description="Column with the ground-truth answer (auto: answer, then solution, target)."
    )
    id: str | None = Field(None, description="Column with a stable row id (auto: id, unique_id; else file:line).")
    messages: str | None = Field(
        None, description="Column with a chat (list of {role, content}); used instead of `prompt` when set."
    )


class DataSource(Section):
    """One source of prompts: a built-in task (preset or reasoning-gym generator) or a dataset file/folder."""

    source: str = Field(
        "sum",
        min_length=1,
        description="Task name (see `reasonrl tasks`) or path to a jsonl/parquet file or a local HF dataset folder.",
    )
    kind: SourceKind = Field(
        "auto",
        description="How to read `source`: auto (by extension, else a task name), task, jsonl, parquet, "
        "gsm8k (`#### answer`), math (last \\boxed{} of the solution) or hf (datasets.load_from_disk folder).",
    )
    size: int | None = Field(
        None,
        ge=1,
        description="Number of prompts: generated for tasks (default 1000), first N rows for files.",
    )
    seed: int = Field(0, description="Seed of a task generator; different seeds give different problems.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options of the task generator (e.g. max_terms for chain_sum; see `reasonrl tasks`).",
    )
    split: str | None = Field(
        None, description="Split of a local HF dataset folder (DatasetDict); None = the only one."
    )
    fields: FieldMap = Field(default_factory=FieldMap, description="Column mapping for file datasets.")
    reward: str | None = Field(
        None,
        description="Verifier that scores this source's responses; None = the task's own (presets: exact, code "
        "tasks: code, reasoning-gym tasks: gym), math for gsm8k/math files, else math for numeric/LaTeX answers, "
        "exact for text.",
        json_schema_extra={"registry": "verifier"},
    )
    skip_invalid: bool = Field(
        False, description="Skip malformed rows (counted and reported) instead of stopping with an error."
    )

    @field_validator("reward")
    @classmethod
    def _known_reward(cls, value: str | None) -> str | None:
        return None if value is None else known_verifier(value)

    @model_validator(mode="before")
    @classmethod
    def _from_spec_string(cls, value: Any) -> Any:
        return parse_spec(value) if isinstance(value, str) else value


def known_verifier(name: str) -> str:
    """`name` if it is a registered verifier or a user function ('module:function' or 'file.py:function'),
    else a ValueError naming the closest registered ones."""
    from reasonrl.plugins import registry

    return registry("verifier").known(name)


def parse_spec(spec: str) -> dict[str, Any]:
    """Turn `[KIND:]SOURCE[?k=v&...]` into the mapping form of `DataSource`."""
    body, _, query = spec.strip().partition("?")
    kind, sep, rest = body.partition(":")
    # A Windows drive letter or a URL-like path is not a kind; only the known kinds split.
    if sep and kind in SOURCE_KINDS:
        mapping: dict[str, Any] = {"kind": kind, "source": rest}
    else:
        mapping = {"source": body}
    options: dict[str, Any] = {}
    for key, raw in parse_qsl(query, keep_blank_values=True):
        value = yaml.safe_load(raw) if raw else None
        if key in DataSource.model_fields and key not in ("source", "kind"):
            mapping[key] = value
        elif key.startswith("fields."):
            mapping.setdefault("fields", {})[key.removeprefix("fields.")] = value
        else:
            options[key] = value
    if options:
        mapping["options"] = options
    return mapping
