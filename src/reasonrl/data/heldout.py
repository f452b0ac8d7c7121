"""Held-out prompts for a training task when the config names no eval source.

The held-out set is the same task with the same options, drawn from a separate seed stream, with every
question that also occurs among the training prompts removed (and repeats within it dropped): small tasks
such as 2-term one-digit sums have only a few hundred distinct problems, and a held-out accuracy measured on
problems seen in training would measure memory, not skill. For files there is no principled split to make
here, so a file source needs an explicit `data.eval`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from reasonrl.data.errors import DataError
from reasonrl.data.loading import SourceSpec, as_source, is_file_source, load_prompts
from reasonrl.data.records import Prompt
from reasonrl.data.tasks import iter_task_prompts

logger = logging.getLogger(__name__)

SCAN_FACTOR = 20
"""Candidates generated per wanted held-out prompt before giving up on reaching `size`."""


def heldout_prompts(
    train: SourceSpec,
    size: int = 200,
    train_prompts: Sequence[Prompt] | None = None,
    config_key: str = "data.train",
) -> list[Prompt]:
    """Up to `size` prompts of the training task that do not occur in training (loaded if not given).

    Fewer than `size` come back (with a warning) when the task runs out of new problems within
    `SCAN_FACTOR * size` candidates; none at all is a `DataError` explaining how to get a held-out set.
    """
    source = as_source(train)
    if is_file_source(source):
        raise DataError(
            f"{config_key} is the file {source.source!r}; held-out prompts can only be generated for "
            f"built-in tasks. Set data.eval to a held-out file (e.g. data.eval.source: path/to/test.jsonl)"
        )
    if train_prompts is None:
        train_prompts = load_prompts(source, config_key=config_key)
    seen = {prompt.question for prompt in train_prompts}
    heldout: list[Prompt] = []
    for prompt in iter_task_prompts(source, SCAN_FACTOR * size, "heldout", config_key):
        if prompt.question not in seen:
            seen.add(prompt.question)
            heldout.append(prompt)
            if len(heldout) == size:
                return heldout
    if not heldout:
        raise DataError(
            f"task {source.source!r} with options {source.options} produced no problem outside the "
            f"{len(seen)} training questions: the task has too few distinct problems. Make it harder through "
            f"{config_key}.options, lower {config_key}.size, or set data.eval"
        )
    logger.warning(
        "held-out set of task %r has %d prompts instead of %d: few of its problems are not in training",
        source.source,
        len(heldout),
        size,
    )
    return heldout
