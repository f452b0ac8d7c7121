"""Shaping rewards that look at the form of a response, not its correctness: `format` and `overlong`.

Both are meant as weighted terms beside a correctness verifier (`reward.functions`), never alone: a policy
rewarded only for tags learns tags.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal

from reasonrl.rewards.extract import as_text, last_boxed

_TAG_NAME = re.compile(r"^[A-Za-z][\w-]*$")


def format_verifier(
    *, tags: list[str] | tuple[str, ...] = ("think", "answer"), boxed: bool = False, strict: bool = False
) -> Any:
    """Options of `get_verifier("format", ...)`: 1.0 when the response has the required form, else 0.0.

    tags: tag names that must each appear exactly once as a non-empty `<tag>...</tag>` block, in this order
        (`["think", "answer"]` is DeepSeek-R1's format). Empty to require no tags.
    boxed: also require a complete `\\boxed{...}` answer.
    strict: nothing but whitespace may stand outside the tag blocks.
    """
    if not isinstance(tags, list | tuple) or not all(isinstance(t, str) and _TAG_NAME.match(t) for t in tags):
        raise ValueError(f"format: tags must be a list of tag names such as ['think', 'answer'], got {tags!r}")
    for name, value in (("boxed", boxed), ("strict", strict)):
        if not isinstance(value, bool):
            raise ValueError(f"format: {name} must be true or false, got {value!r}")
    if not tags and not boxed:
        raise ValueError("format: nothing to check; give `tags`, set `boxed: true`, or both")
    if strict and not tags:
        raise ValueError("format: strict needs tags (it forbids text outside the tag blocks)")
    return partial(score_format, tags=tuple(tags), boxed=boxed, strict=strict)


def score_format(
    response: Any,
    answer: Any,
    meta: Mapping[str, Any] | None,
    *,
    tags: tuple[str, ...],
    boxed: bool,
    strict: bool,
) -> float:
    """1.0 if every required tag appears once, in order and non-empty (and a box when required), else 0.0.

    Plain string searches rather than one regex: a lazy pattern with a non-empty condition backtracks
    quadratically on long blocks, and responses can be megabytes.
    """
    text = as_text(response)
    if boxed and last_boxed(text) is None:
        return 0.0
    position = 0
    outside: list[str] = []
    for tag in tags:
        opening, closing = f"<{tag}>", f"</{tag}>"
        if text.count(opening) != 1 or text.count(closing) != 1:
            return 0.0
        start, end = text.find(opening), text.find(closing)
        if start < position or end < start or not text[start + len(opening) : end].strip():
            return 0.0
        outside.append(text[position:start])
        position = end + len(closing)
    outside.append(text[position:])
    return 0.0 if strict and any(part.strip() for part in outside) else 1.0


def overlong_verifier(
    *, max_length: int, buffer: int, unit: Literal["chars", "tokens"] = "chars", tokenizer: str | None = None
) -> Any:
    """Options of `get_verifier("overlong", ...)`: DAPO's soft overlong punishment, a PENALTY in [-1, 0].

    With L the response length, L_max = max_length and L_buf = buffer (DAPO, arXiv 2503.14476, eq. 13):
        0                          if L <= L_max - L_buf
        (L_max - L_buf - L) / L_buf  if L_max - L_buf < L <= L_max   (linear from 0 down to -1)
        -1                         if L > L_max
    Add it to a correctness reward with a weight (DAPO: 1.0), e.g. max_length 20480, buffer 4096 in tokens.

    unit: count characters, or tokens of `tokenizer` (a local Hugging Face tokenizer folder or hub name).
    """
    for name, value in (("max_length", max_length), ("buffer", buffer)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"overlong: {name} must be a positive integer, got {value!r}")
    if buffer > max_length:
        raise ValueError(f"overlong: buffer ({buffer}) must not exceed max_length ({max_length})")
    if unit == "chars":
        if tokenizer is not None:
            raise ValueError("overlong: `tokenizer` only applies with unit: tokens")
        return partial(score_overlong, max_length=max_length, buffer=buffer, length=len)
    if unit != "tokens":
        raise ValueError(f"overlong: unit must be 'chars' or 'tokens', got {unit!r}")
    if not isinstance(tokenizer, str) or not tokenizer:
        raise ValueError("overlong: unit: tokens needs `tokenizer`, the path or name of a Hugging Face tokenizer")
    return partial(score_overlong, max_length=max_length, buffer=buffer, length=_TokenCounter(tokenizer))


def score_overlong(
    response: Any,
    answer: Any,
    meta: Mapping[str, Any] | None,
    *,
    max_length: int,
    buffer: int,
    length: Callable[[str], int],
) -> float:
    """The soft overlong penalty of `response` (see `overlong_verifier`)."""
    size = length(as_text(response))
    if size <= max_length - buffer:
        return 0.0
    if size > max_length:
        return -1.0
    return (max_length - buffer - size) / buffer


class _TokenCounter:
    """Counts tokens with a Hugging Face tokenizer (transformers is imported only for this unit)."""

    def __init__(self, name: str) -> None:
        from transformers import AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(name)
        except Exception as exc:
            raise ValueError(f"overlong: could not load tokenizer {name!r} ({exc}); give a tokenizer folder") from exc

    def __call__(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])
