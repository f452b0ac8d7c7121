"""`load_prompts`: one entry point from a data source (object, mapping or spec string) to prompts.

`kind: auto` decides between a file and a task by the source's look: a source with a path separator or an
extension, or an existing folder, is a file (.jsonl/.json/.ndjson = JSON lines, .parquet, folder = saved HF
dataset); anything else is a task name. `task:NAME` forces a task when a folder of that name exists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yaml
from pydantic import ValidationError

from reasonrl.config.data_source import DataSource
from reasonrl.config.errors import config_error
from reasonrl.data.files import load_file_prompts
from reasonrl.data.records import LoadReport, Prompt
from reasonrl.data.tasks import load_task_prompts, resolve_task

SourceSpec = DataSource | Mapping[str, Any] | str


def as_source(spec: SourceSpec) -> DataSource:
    """`spec` as a validated `DataSource`; an invalid one is a `ConfigError` naming the field and the fix."""
    if isinstance(spec, DataSource):
        return spec
    try:
        return DataSource.model_validate(spec)
    except ValidationError as exc:
        raise config_error(DataSource, exc, f"data source {spec!r}") from None


def to_spec(source: DataSource) -> str:
    """The spec string of `source`, naming only what differs from the defaults; `DataSource(to_spec(s)) == s`.

    Logs and reports show this one line instead of a nested mapping. A value is written bare when YAML reads
    it back as the same value, else as JSON (which YAML reads too), so `"3"` stays a string.
    """

    def scalar(value: Any) -> str:
        if isinstance(value, str) and yaml.safe_load(value) == value:
            return value
        return json.dumps(value)

    defaults = DataSource()
    query = [
        (name, scalar(getattr(source, name)))
        for name in ("size", "seed", "split", "reward", "skip_invalid")
        if getattr(source, name) != getattr(defaults, name)
    ]
    query += [(f"fields.{name}", scalar(value)) for name, value in source.fields if value is not None]
    query += [(name, scalar(value)) for name, value in source.options.items()]
    kind = "" if source.kind == "auto" else f"{source.kind}:"
    # Only what parse_qsl would misread (&, =, +, %, #) needs escaping; the rest stays readable.
    encoded = urlencode(query, quote_via=quote, safe="/:,[]{}\"' \\")
    return f"{kind}{source.source}" + (f"?{encoded}" if query else "")


def is_file_source(source: DataSource) -> bool:
    """Whether `source` names a file or folder rather than a built-in task (see the module docstring)."""
    if source.kind != "auto":
        return source.kind != "task"
    path = Path(source.source).expanduser()
    return bool(path.suffix) or "/" in source.source or os.sep in source.source or path.is_dir()


def load_source(spec: SourceSpec, *, config_key: str = "data.train") -> tuple[list[Prompt], LoadReport]:
    """The prompts of one source and a report of how it was read (including skipped malformed rows).

    `config_key` is where the source sits in the run config; error messages use it to name the setting to fix.
    """
    source = as_source(spec)
    if is_file_source(source):
        return load_file_prompts(source, source.kind, config_key)
    prompts = load_task_prompts(source, config_key)
    shape = resolve_task(source.source, config_key).kind
    return prompts, LoadReport(source=to_spec(source), kind="task", shape=shape, prompts=len(prompts))


def load_prompts(spec: SourceSpec, *, config_key: str = "data.train") -> list[Prompt]:
    """The prompts of a data source: `DataSource`, its mapping form, or a spec string like `sum?size=50`."""
    return load_source(spec, config_key=config_key)[0]
