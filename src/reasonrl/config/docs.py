"""Generate `docs/config.md` from the config models, so the reference can never drift from the code."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from reasonrl.config.errors import section_type
from reasonrl.config.schema import RunConfig
from reasonrl.plugins import FAMILIES, registry

HEADER = """# Configuration reference

Generated from `src/reasonrl/config/` by `reasonrl config docs --out docs/config.md`; a test fails when
this file is stale. Every key has a default; unknown keys are errors that name the closest valid key.

Set values in a YAML file (`reasonrl train run.yaml`) or on the command line
(`--set rollout.group_size=4 --set algorithm.clip_high=0.28`); values are read as YAML, so `4` is an
int, `true` a bool and `[a, b]` a list. `reasonrl config show run.yaml --set ...` prints the resolved
config; `reasonrl config schema` prints the JSON schema.

A data source (`data.train`, `data.eval`) can also be written as one string,
`[KIND:]SOURCE[?key=value&...]`, e.g. `gsm8k:data/test.jsonl?size=200` or `chain_sum?num_terms=3`:
keys naming a data-source field set it, other keys are task-generator options.

Fields that select a part (advantage estimator, policy loss, verifier, rollout engine, ...) take a registered
name or your own code as `package.module:name` / `path/to/file.py:name`, with its options in the field's
`*_options` mapping; the registered names are listed at the end (see docs/extending.md).
"""


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation).replace("typing.", "")
    return (
        text.replace("NoneType", "None")
        .replace("reasonrl.config.schema.", "")
        .replace("reasonrl.config.data_source.", "")
    )


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "(required)"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{json.dumps(value, default=str)}`"


def _rows(model: type[BaseModel], prefix: str, sections: list[tuple[str, type[BaseModel]]]) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = section_type(info.annotation)
        if sub is not None:
            sections.append((key, sub))
            default = "`null` (optional)" if info.default is None else "see below"
            rows.append(f"| `{key}` | section `{sub.__name__}` | {default} | {info.description} |")
            continue
        description = (info.description or "").replace("|", "\\|")
        family = (info.json_schema_extra or {}).get("registry") if isinstance(info.json_schema_extra, dict) else None
        if family is not None:
            description += " Registered: " + ", ".join(f"`{name}`" for name in registry(str(family)).names()) + "."
        rows.append(f"| `{key}` | `{_type_name(info.annotation)}` | {_default(info)} | {description} |")
    return rows


def config_markdown() -> str:
    """The whole reference: one table per section, in declaration order, nested sections after."""
    parts = [HEADER]
    pending: list[tuple[str, type[BaseModel]]] = []
    top_level = _rows(RunConfig, "", pending)
    scalars = [row for row in top_level if "| section `" not in row]
    if scalars:  # keys that are not sections (e.g. `pipeline`) get a table of their own, first
        parts.append("\n## top level\n\n| key | type | default | description |\n|---|---|---|---|")
        parts.extend(scalars)
    while pending:
        key, model = pending.pop(0)
        nested: list[tuple[str, type[BaseModel]]] = []
        parts.append(f"\n## `{key}`\n\n{(model.__doc__ or '').strip()}\n")
        parts.append("| key | type | default | description |\n|---|---|---|---|")
        parts.extend(_rows(model, f"{key}.", nested))
        pending = nested + pending
    parts.append(registered_names())
    return "\n".join(parts) + "\n"


def registered_names() -> str:
    """Every registry: its names and how reasonrl calls an entry (what a plug-in must look like)."""
    lines = [
        "\n## Registered names\n",
        "Each family is a registry; a config or strategy string names an entry, or your own callable with the "
        "same calling convention as `package.module:name` / `path/to/file.py:name`. Options are the "
        "callable's keyword-only parameters.\n",
        "| family | registered | called as |\n|---|---|---|",
    ]
    for family in FAMILIES:
        plugins = registry(family)
        names = ", ".join(f"`{name}`" for name in plugins.names())
        lines.append(f"| {plugins.kind} | {names} | `{plugins.call}` |")
    return "\n".join(lines)


def config_json_schema() -> str:
    return json.dumps(RunConfig.model_json_schema(), indent=2) + "\n"
