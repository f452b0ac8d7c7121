"""The `gym` verifier: reasoning-gym's own scorer for its generated tasks.

Each reasoning-gym dataset knows best how to grade its answers (partial credit, equivalent forms), so the
score is `reasoning_gym.factory.get_score_answer_fn(name)(answer, entry)`. The data package keeps the full
generated entry in `prompt.meta["gym_entry"]`; without one, an entry is built from the reference answer and
the `dataset` option (enough for scorers that only compare answers).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from functools import cache, partial
from typing import Any

from reasonrl.rewards.extract import ExtractMode, as_text, check_extract_mode, extract_answer

logger = logging.getLogger(__name__)


def gym_verifier(*, dataset: str | None = None, extract: ExtractMode = "auto") -> Any:
    """Options of `get_verifier("gym", ...)`.

    dataset: reasoning-gym dataset whose scorer to use when the prompt carries no `meta["gym_entry"]`
        (with one, the entry's `metadata.source_dataset` decides).
    extract: which part of the response is the answer: auto (an `<answer>` tag, else the last `\\boxed{}`,
        else the whole response), answer_tag, boxed or none.
    """
    if dataset is not None:
        from reasoning_gym.factory import DATASETS

        if dataset not in DATASETS:
            raise ValueError(f"gym: unknown reasoning-gym dataset {dataset!r}; known: {sorted(DATASETS)}")
    return partial(score_gym, dataset=dataset, extract=check_extract_mode(extract))


def score_gym(
    response: Any, answer: Any, meta: Mapping[str, Any] | None, *, dataset: str | None, extract: ExtractMode
) -> float:
    """reasoning-gym's score of the extracted answer, clamped to [0, 1]; 0.0 when no scorer applies."""
    entry = meta.get("gym_entry") if isinstance(meta, Mapping) else None
    if isinstance(entry, Mapping) and isinstance(entry.get("metadata"), Mapping):
        name = entry["metadata"].get("source_dataset", dataset)
    else:
        entry, name = {"question": "", "answer": answer, "metadata": {}}, dataset
    if not isinstance(name, str):
        _warn_once(
            "gym: no reasoning-gym dataset to score with; pass prompts with meta['gym_entry'] or set the "
            "verifier's `dataset` option. Such responses score 0"
        )
        return 0.0
    scorer = _scorer(name)
    if scorer is None:
        return 0.0
    predicted = extract_answer(as_text(response), extract)
    try:
        score = float(scorer(predicted, dict(entry)))
    except Exception as exc:  # a scorer bug on odd input is that scorer's problem; the response scores 0
        logger.debug("reasoning-gym scorer %r failed: %r", name, exc)
        return 0.0
    return min(max(score, 0.0), 1.0) if math.isfinite(score) else 0.0


@cache
def _scorer(name: str) -> Callable[[Any, dict[str, Any]], float] | None:
    """The dataset's scorer, built once per process (reasoning-gym constructs a dataset object for it)."""
    from reasoning_gym.factory import get_score_answer_fn

    try:
        return get_score_answer_fn(name)
    except Exception as exc:
        _warn_once(f"gym: no scorer for reasoning-gym dataset {name!r} ({exc}); its responses score 0")
        return None


@cache
def _warn_once(message: str) -> None:
    logger.warning(message)
