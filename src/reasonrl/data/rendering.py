"""A `Prompt` -> the exact string the model sees: through the tokenizer's chat template, or a plain template.

Instruction-tuned models expect their chat template and answer worse without it; a model built from scratch
for the demo may have none, or be trained on the bare question. `PromptFormat.template` picks; `auto` uses
the chat template whenever the tokenizer has one.
"""

from __future__ import annotations

from typing import Any

from reasonrl.config.schema import PromptFormat
from reasonrl.data.errors import DataError
from reasonrl.data.records import Prompt


def has_chat_template(tokenizer: Any | None) -> bool:
    """Whether `tokenizer` (a transformers tokenizer, or None) carries a chat template."""
    return tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))


def prompt_messages(prompt: Prompt, fmt: PromptFormat) -> list[dict[str, str]]:
    """The chat for `prompt`: its own messages or one user turn, with the configured system prompt and
    instruction applied.

    A configured system prompt replaces a system message the data brought (the config speaks for this run);
    the instruction goes on a new line after the last user message, where chat models expect format hints.
    """
    messages = (
        [dict(m) for m in prompt.messages]
        if prompt.messages is not None
        else [{"role": "user", "content": prompt.text or ""}]
    )
    return formatted_messages(messages, fmt)


def formatted_messages(messages: list[dict[str, str]], fmt: PromptFormat) -> list[dict[str, str]]:
    """`messages` (copied) with the configured system prompt and instruction applied (see `prompt_messages`;
    an environment's opening messages get the same treatment)."""
    messages = [dict(m) for m in messages]
    if fmt.system_prompt is not None:
        others = [m for m in messages if m["role"] != "system"]
        messages = [{"role": "system", "content": fmt.system_prompt}, *others]
    if fmt.instruction:
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        if users:
            last = messages[users[-1]]
            last["content"] = f"{last['content']}\n{fmt.instruction}"
    return messages


def render_plain(prompt: Prompt, fmt: PromptFormat) -> str:
    """`fmt.plain_template` filled in; {system} and {instruction} bring their own separators when set.

    A chat prompt's {question} is the content of its non-system turns, one per line.

    The separators live in the values (system + blank line, newline + instruction) so the default template
    `{system}{question}{instruction}` reads well and renders the bare question when neither is configured,
    which is what a tiny model trained on `4-1-7=` must see.
    """
    if prompt.messages is not None:
        system = next((m["content"] for m in prompt.messages if m["role"] == "system"), None)
        question = "\n".join(m["content"] for m in prompt.messages if m["role"] != "system")
    else:
        system, question = None, prompt.text or ""
    system = fmt.system_prompt if fmt.system_prompt is not None else system
    return fmt.plain_template.format(
        system=f"{system}\n\n" if system else "",
        question=question,
        instruction=f"\n{fmt.instruction}" if fmt.instruction else "",
    )


def render_prompt(prompt: Prompt, tokenizer: Any | None = None, fmt: PromptFormat | None = None) -> str:
    """The string the model is given for `prompt`, ending where its response should begin.

    With the chat template this is `apply_chat_template(..., add_generation_prompt=True)`, so the string
    ends with the assistant turn's header.
    """
    fmt = fmt or PromptFormat()
    if fmt.template == "plain" or (fmt.template == "auto" and not has_chat_template(tokenizer)):
        return render_plain(prompt, fmt)
    if not has_chat_template(tokenizer):
        what = "no tokenizer was given" if tokenizer is None else "the tokenizer has no chat template"
        raise DataError(f"data.format.template is 'chat' but {what}; set data.format.template: auto or plain")
    messages = prompt_messages(prompt, fmt)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
