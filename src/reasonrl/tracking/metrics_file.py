"""`metrics.jsonl`: the run's own record of every step, written whatever other sinks are enabled.

One line per step, `{"step": 3, "reward/mean": 0.5, "time/generate": 1.2}`, names exactly as logged,
non-finite values as `null` (see `encoding`). Each line is flushed when written, so a killed run keeps
every step it finished; on resume, `truncate_after` drops the steps the restored checkpoint did not
keep, so the file never holds a step twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from reasonrl.tracking.encoding import json_line

STEP_KEY = "step"


class MetricsFile:
    """Appends one flushed JSON line per step to a metrics file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_partial_last_line(self.path)
        self._file: TextIO = self.path.open("a", encoding="utf-8")

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Append `{"step": step, **metrics}` and flush it to the operating system."""
        if STEP_KEY in metrics:
            raise ValueError(
                f"metric name {STEP_KEY!r} is reserved for the step number in {self.path.name}; "
                "rename the metric (e.g. 'train/step') or pass the step as the first argument"
            )
        self._file.write(json_line({STEP_KEY: step, **metrics}, where=f"metrics at step {step}"))
        self._file.flush()

    def truncate_after(self, step: int) -> None:
        """Remove every line whose step is greater than `step` (resume from a checkpoint at `step`)."""
        kept = [row for row in read_metrics(self.path) if row[STEP_KEY] <= step]
        self._file.close()
        scratch = self.path.with_name(self.path.name + ".tmp")
        with scratch.open("w", encoding="utf-8") as out:
            out.writelines(json_line(row) for row in kept)
        # Replace in one move: a crash during the rewrite leaves the old file whole rather than half of it.
        os.replace(scratch, self.path)
        self._file = self.path.open("a", encoding="utf-8")

    def close(self) -> None:
        self._file.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a metrics file in file order, `null`s as None; a half-written last line is skipped.

    A run killed while writing leaves at most its last line incomplete; any other unreadable line means the
    file was edited or damaged, and the error names its line number.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number} is not valid JSON ({error.msg}); fix or delete that line") from error
        if not isinstance(row, dict) or not isinstance(row.get(STEP_KEY), int):
            raise ValueError(
                f"{path}:{number} is not a metrics row (an object with an integer {STEP_KEY!r}); "
                "fix or delete that line"
            )
        rows.append(row)
    return rows


def _drop_partial_last_line(path: Path) -> None:
    """Cut a line left unfinished by a killed writer, so the next line does not get glued onto it."""
    if not path.exists():
        return
    with path.open("r+b") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        file.seek(0)
        file.truncate(file.read().rfind(b"\n") + 1)
