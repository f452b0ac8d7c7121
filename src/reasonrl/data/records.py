"""The `Prompt` record: one problem as every later part sees it, whatever file or generator it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Prompt:
    """One problem with its ground truth.

    Exactly one of `messages` (a chat: list of {"role", "content"}) or `text` (a bare user prompt) is set;
    rendering turns either into the string the model sees. `answer` is what the verifier named by `task`
    compares a response with; `meta` keeps whatever the source knew (the reasoning-gym entry, the full
    solution, the file and line) so verifiers and reports can use it without another lookup.
    """

    id: str
    answer: Any
    task: str
    text: str | None = None
    messages: list[dict[str, str]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.text is None) == (self.messages is None):
            raise ValueError(f"Prompt {self.id!r}: set exactly one of `text` or `messages`")

    @property
    def question(self) -> str:
        """The user's words, for display: the text, or the last user message of the chat."""
        if self.text is not None:
            return self.text
        users = [m["content"] for m in self.messages or [] if m.get("role") == "user"]
        return users[-1] if users else ""


@dataclass
class LoadReport:
    """What loading one source did: how it was read, how many prompts came out, which rows were skipped.

    `skipped` counts malformed rows left out under `skip_invalid: true`; `skipped_examples` keeps the first
    few messages (file, line, reason) so a report can show what was wrong without a second pass.
    """

    source: str
    kind: str
    shape: str
    prompts: int = 0
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs: `data/train.jsonl (jsonl, gsm8k): 7473 prompts, 2 malformed rows skipped`."""
        skipped = f", {self.skipped} malformed rows skipped" if self.skipped else ""
        return f"{self.source} ({self.kind}, {self.shape}): {self.prompts} prompts{skipped}"
