"""JSON lines that always parse: non-finite numbers become `null`, arrays and tensors become lists.

Strict JSON has no NaN or infinity, and a run produces them (a diverged loss, a `-inf` log-prob of a
masked token). Python's default would write the bare token `NaN`, which `jq`, JavaScript and many
readers reject, so one bad step would make the whole file unreadable. The convention here, used by
`metrics.jsonl` and the rollout dumps alike, is: **a non-finite float is written as `null`**, which
pandas and `read_metrics` read back as NaN / a missing point.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def to_jsonable(value: Any, where: str = "value") -> Any:
    """`value` with non-finite floats replaced by None and array-likes (numpy, torch) turned into lists.

    `where` names the position inside the record, so an error points at the offending field.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if hasattr(value, "tolist"):
        # numpy arrays and scalars, torch tensors: tolist() yields plain Python numbers.
        return to_jsonable(value.tolist(), where)
    raise TypeError(
        f"{where} has type {type(value).__name__}, which cannot be written as JSON; "
        "pass numbers, strings, booleans, None, lists, dicts, numpy arrays or tensors "
        "(convert other objects, e.g. dataclasses, with dataclasses.asdict first)"
    )


def json_line(record: Mapping[str, Any], where: str = "record") -> str:
    """One compact JSON line (with the trailing newline) for `record`, following the null convention."""
    try:
        # Fast path: most records are already plain JSON, and long token lists make a Python walk slow.
        return _compact(record)
    except (TypeError, ValueError):
        return _compact(to_jsonable(record, where))


def _compact(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False) + "\n"
