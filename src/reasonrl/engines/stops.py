"""Stop strings for engines that decode token by token.

A stop string can span several tokens, so each check decodes a short tail of the response; only the tail
long enough to contain the longest stop string (plus one token of slack for merged characters) is decoded,
which keeps the check O(1) per token.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase


class StopChecker:
    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        # A token decodes to at least one character in practice, so the longest stop string spans at most
        # that many tokens; +2 covers a stop string that starts inside a multi-character token.
        self.window = max((len(s) for s in self.stop), default=0) + 2

    def hit(self, tokens: Sequence[int], new: int | None = None) -> bool:
        """Whether a stop string ends inside the last `new` tokens of `tokens` (None: anywhere in them).

        `tokens` may begin with a continued response's prefix: a stop string that ends in the prefix (a
        particle's previous step ended at the delimiter) was the previous call's, not this one's; one that
        spans the prefix and the new tokens counts."""
        tail = tokens[-self.window :]
        text = self.tokenizer.decode(tail, skip_special_tokens=True)
        old = 0 if new is None else max(0, len(tail) - new)
        floor = len(self.tokenizer.decode(tail[:old], skip_special_tokens=True)) if old else 0
        return any(_ends_after(text, s, floor) for s in self.stop)

    def truncate(self, text: str) -> str:
        """The text before the first stop string, as vLLM returns it by default."""
        cut = min((i for i in (text.find(s) for s in self.stop) if i >= 0), default=len(text))
        return text[:cut]


def _ends_after(text: str, stop: str, floor: int) -> bool:
    """Whether an occurrence of `stop` in `text` ends after character `floor`."""
    start = text.find(stop)
    while start >= 0:
        if start + len(stop) > floor:
            return True
        start = text.find(stop, start + 1)
    return False


def response_text(tokenizer: PreTrainedTokenizerBase, tokens: Sequence[int], stop: Sequence[str]) -> str:
    """A response's text as engines report it: decoded without special tokens, cut before the first stop
    string (decoding the whole response finds a stop string across a continuation point too)."""
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    return StopChecker(tokenizer, stop).truncate(text) if stop else text
