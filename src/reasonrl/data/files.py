"""Prompts from dataset files: pick the reader, detect the row shape, convert rows, stop or skip bad ones."""

from __future__ import annotations

import logging
from pathlib import Path

from reasonrl.config.data_source import DataSource
from reasonrl.data.errors import DataError
from reasonrl.data.readers import CONTAINERS, container_for, missing_path, read_rows
from reasonrl.data.records import LoadReport, Prompt
from reasonrl.data.rows import RowError, RowReader, Shape, as_row, detect_shape

logger = logging.getLogger(__name__)

MAX_SKIPPED_EXAMPLES = 5


def load_file_prompts(source: DataSource, kind: str, config_key: str) -> tuple[list[Prompt], LoadReport]:
    """The first `source.size` prompts of the file or folder in `source` (all when size is None).

    `kind` is a container (jsonl, parquet, hf), a row shape (gsm8k, math: container from the extension), or
    auto (both detected). A malformed row stops loading with a `DataError` naming the file and line, unless
    `source.skip_invalid` is set: then it is skipped, counted in the report and logged as a warning.
    """
    label = source.source
    if source.options:
        raise DataError(f"{config_key}.options apply to built-in tasks only, but {label!r} is a file; remove them")
    path = Path(label).expanduser()
    container = kind if kind in CONTAINERS else container_for(path)
    if container is None:
        if not path.exists():
            raise missing_path(path, label)
        raise DataError(
            f"{label}: cannot tell the format from the extension {path.suffix!r}; use .jsonl, .json, "
            f".parquet or a saved HF dataset folder, or set {config_key}.kind to jsonl, parquet or hf"
        )
    forced: Shape | None = "gsm8k" if kind == "gsm8k" else "math" if kind == "math" else None
    report = LoadReport(source=label, kind=container, shape=forced or "plain")
    reader: RowReader | None = None
    prompts: list[Prompt] = []
    for raw in read_rows(path, container, source.split, label):
        if source.size is not None and len(prompts) >= source.size:
            break
        try:
            if raw.error is not None:
                raise RowError(raw.error)
            if reader is None:
                shape = forced or detect_shape(as_row(raw.value), source.fields)
                reader = RowReader(shape, source.fields, source.reward, path.name, config_key)
                report.shape = shape
            prompts.append(reader.prompt(raw))
        except RowError as exc:
            message = f"{label} {raw.location}: {exc}"
            if not source.skip_invalid:
                fix = "" if "skip_invalid" in message else f"; fix it or set {config_key}.skip_invalid: true"
                raise DataError(message + fix) from None
            report.skipped += 1
            if len(report.skipped_examples) < MAX_SKIPPED_EXAMPLES:
                report.skipped_examples.append(message)
    report.prompts = len(prompts)
    if report.skipped:
        logger.warning("%s; first: %s", report.summary(), report.skipped_examples[0])
    if not prompts:
        if report.skipped:
            raise DataError(f"{label}: all {report.skipped} rows are malformed; first: {report.skipped_examples[0]}")
        raise DataError(f"{label}: the file has no rows")
    return prompts, report
