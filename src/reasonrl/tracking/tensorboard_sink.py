"""TensorBoard scalars through `torch.utils.tensorboard`, on by default and skipped when not installed.

TensorBoard is a convenience on top of `metrics.jsonl`, so its absence is worth a warning, never a failed
run; the warning is given once per process, not once per run or step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
_warned_missing = False


class TensorBoardSink:
    """Writes each metric as a scalar under its own name, flushed every step like `metrics.jsonl`."""

    def __init__(self, writer_class: Any, log_dir: Path) -> None:
        self._writer_class = writer_class
        self._log_dir = log_dir
        self._writer = writer_class(log_dir=str(log_dir))

    def log(self, step: int, metrics: Mapping[str, float | int]) -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(name, value, global_step=step)
        self._writer.flush()

    def truncate_after(self, step: int) -> None:
        """Reopen with `purge_step`, which makes TensorBoard drop the old events after `step` on reading."""
        self._writer.close()
        self._writer = self._writer_class(log_dir=str(self._log_dir), purge_step=step + 1)

    def summary(self, summary: Mapping[str, Any]) -> None:
        text = json.dumps(summary, indent=2, default=str)
        # Indented by four spaces, the JSON renders as a code block in TensorBoard's Markdown text tab.
        self._writer.add_text("summary", "\n".join("    " + line for line in text.splitlines()))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def open_tensorboard(log_dir: Path) -> TensorBoardSink | None:
    """A sink writing to `log_dir`, or None (with a one-time warning) when tensorboard is not installed."""
    global _warned_missing
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        if not _warned_missing:
            _warned_missing = True
            logger.warning(
                "logging.tensorboard is true but TensorBoard cannot be imported (%s); metrics still go to "
                "metrics.jsonl. Install it with `pip install tensorboard`, or set logging.tensorboard: false "
                "to silence this warning.",
                error,
            )
        return None
    return TensorBoardSink(SummaryWriter, log_dir)
