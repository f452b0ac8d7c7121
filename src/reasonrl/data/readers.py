"""Raw rows out of dataset files: JSON lines, parquet and local Hugging Face dataset folders.

Readers only read. Each row comes with its location (`line 7` in a jsonl file, `row 3` in a table) so that
whoever finds it malformed can say where; a line that is not even JSON is passed on with its parse error
instead of raising, because skipping it is the caller's decision (`skip_invalid`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonrl.data.errors import DataError

CONTAINERS = ("jsonl", "parquet", "hf")
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class RawRow:
    """One row as stored: `value` is whatever the file holds there; `error` says why it could not be read."""

    index: int
    location: str
    value: Any = None
    error: str | None = None


def container_for(path: Path) -> str | None:
    """The reader a path needs judging by its name: a folder is a saved HF dataset; None if unknown."""
    if path.is_dir():
        return "hf"
    return _EXTENSIONS.get(path.suffix.lower())


def missing_path(path: Path, label: str) -> DataError:
    """The error for a source path that does not exist, with the absolute path that was tried."""
    return DataError(
        f"{label}: no such file or directory (looked in {path.resolve()}); check the path, a relative path "
        f"is read from the current directory"
    )


def read_rows(path: Path, container: str, split: str | None, label: str) -> Iterator[RawRow]:
    """Rows of the file or folder at `path` read as `container`; `label` is how messages name the source."""
    if not path.exists():
        raise missing_path(path, label)
    if split is not None and container != "hf":
        raise DataError(f"{label}: `split` applies to HF dataset folders only; remove it for a {container} file")
    if container == "jsonl":
        return _json_rows(path, label)
    if container == "parquet":
        return _parquet_rows(path, label)
    return _hf_rows(path, split, label)


def _json_rows(path: Path, label: str) -> Iterator[RawRow]:
    with path.open(encoding="utf-8") as handle:
        try:
            head = handle.read(1024).lstrip()
            handle.seek(0)
            if path.suffix.lower() == ".json" and head.startswith("["):
                # A .json file holding one array rather than JSON lines; its items have no line numbers.
                items = json.load(handle)
                yield from (RawRow(i, f"item {i}", value) for i, value in enumerate(items))
                return
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield RawRow(number, f"line {number}", json.loads(line))
                except json.JSONDecodeError as exc:
                    error = f"invalid JSON ({exc.msg} at column {exc.colno})"
                    yield RawRow(number, f"line {number}", error=error)
        except UnicodeDecodeError as exc:
            raise DataError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from exc
        except json.JSONDecodeError as exc:
            raise DataError(f"{label}: invalid JSON array ({exc.msg} at line {exc.lineno}); fix the file") from exc


def _parquet_rows(path: Path, label: str) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{label}: not a readable parquet file ({exc}); check the file or its kind") from exc
    index = 0
    for batch in table.iter_batches(batch_size=1024):
        for value in batch.to_pylist():
            yield RawRow(index, f"row {index}", value)
            index += 1


def _hf_rows(path: Path, split: str | None, label: str) -> Iterator[RawRow]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise DataError(
            f"{label}: not a dataset folder saved with `datasets` (save_to_disk); {exc}. For files, point "
            f"the source at the file itself"
        ) from exc
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if split is None and len(splits) != 1:
            raise DataError(f"{label} holds the splits {splits}; choose one with `split` (e.g. {splits[0]})")
        chosen = split if split is not None else splits[0]
        if chosen not in loaded:
            raise DataError(f"{label} has no split {chosen!r}; its splits are {splits}")
        loaded, where = loaded[chosen], f"{chosen} row"
    elif split is not None:
        raise DataError(f"{label} holds a single dataset without splits; remove `split` (it was {split!r})")
    else:
        where = "row"
    for index, value in enumerate(loaded):
        yield RawRow(index, f"{where} {index}", value)
