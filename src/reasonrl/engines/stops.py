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

    def hit(self, tokens: Sequence[int]) -> bool:
        tail = self.tokenizer.decode(tokens[-self.window :], skip_special_tokens=True)
        return any(s in tail for s in self.stop)

    def truncate(self, text: str) -> str:
        """The text before the first stop string, as vLLM returns it by default."""
        cut = min((i for i in (text.find(s) for s in self.stop) if i >= 0), default=len(text))
        return text[:cut]


def response_text(tokenizer: PreTrainedTokenizerBase, tokens: Sequence[int], stop: Sequence[str]) -> str:
    """A response's text as engines report it: decoded without special tokens, cut before the first stop
    string (decoding the whole response finds a stop string across a continuation point too)."""
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    return StopChecker(tokenizer, stop).truncate(text) if stop else text
