"""The end-of-run summary: `summary.json` for tools and a rich table for the person at the terminal.

The summary is whatever the pipeline reports (suggested keys: `accuracy/before`, `accuracy/after`,
`wall_seconds`, `steps`, `samples_per_s`, `run_dir`). In the table, a pair `<name>/before` and
`<name>/after` becomes one row `before → after (change)`, since the change is what a reader looks for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from reasonrl.tracking.encoding import to_jsonable
from reasonrl.tracking.run_directory import RunDirectory

_BEFORE, _AFTER = "/before", "/after"


def write_summary(run: RunDirectory | str | Path, summary: Mapping[str, Any]) -> Path:
    """Write `summary` as indented JSON to `<run>/summary.json` (non-finite numbers as null)."""
    run = run if isinstance(run, RunDirectory) else RunDirectory(Path(run))
    run.root.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_jsonable(summary, "summary"), indent=2, allow_nan=False, ensure_ascii=False)
    run.summary_path.write_text(text + "\n", encoding="utf-8")
    return run.summary_path


def summary_table(summary: Mapping[str, Any], title: str = "Run summary") -> Table:
    """A two-column table of `summary`, nested mappings flattened to `a/b`, in the given order."""
    flat = _flatten(summary)
    table = Table(title=title, show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for name, value in flat.items():
        if name.endswith(_AFTER) and name.removesuffix(_AFTER) + _BEFORE in flat:
            continue
        if name.endswith(_BEFORE) and (after := name.removesuffix(_BEFORE) + _AFTER) in flat:
            table.add_row(name.removesuffix(_BEFORE), _change(value, flat[after]))
        else:
            table.add_row(name, _format(value))
    return table


def _flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _change(before: Any, after: Any) -> str:
    text = f"{_format(before)} → {_format(after)}"
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after))
    if numbers and math.isfinite(after - before):
        text += f" ({after - before:+.4g})"
    return text
