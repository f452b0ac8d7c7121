"""Rollout dumps: the sampled responses of a step, one JSON object per response, for reading and replay.

A record is whatever the pipeline knows about a response (prompt and response text, reward and its
breakdown, token ids, behaviour log-probs, per-token credit weights, ...); this module fixes no schema,
only that each record is a JSON object. Saved rollouts let a learner bug be reproduced by replaying them
into training without the engine, and let a person read what the policy actually wrote.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from reasonrl.tracking.encoding import json_line


def write_rollouts(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write `records` as JSON lines to `path` (non-finite floats as `null`, arrays and tensors as lists).

    The file appears whole or not at all, so a replay never reads a dump cut short by a killed run.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    try:
        with scratch.open("w", encoding="utf-8") as out:
            for index, record in enumerate(records):
                if not isinstance(record, Mapping):
                    raise TypeError(
                        f"rollout record {index} is a {type(record).__name__}; each record must be a dict "
                        "(convert dataclasses such as Sample with dataclasses.asdict)"
                    )
                out.write(json_line(record, where=f"rollout record {index}"))
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    os.replace(scratch, path)
    return path


def read_rollouts(path: str | Path) -> list[dict[str, Any]]:
    """The records of a rollout dump, in the order they were written."""
    path = Path(path)
    records = []
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number} is not valid JSON ({error.msg})") from error
    return records
