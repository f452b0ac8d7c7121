"""Rendering: the chat template when the tokenizer has one, the plain template otherwise, and the config's
system prompt and instruction in both."""

from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerFast

from reasonrl.config.schema import PromptFormat
from reasonrl.data import DataError, Prompt, prompt_messages, render_prompt

SUM = Prompt(id="s", answer="-4", task="exact", text="4-1-7=")
CHAT = Prompt(
    id="c",
    answer="7",
    task="exact",
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+5="}],
)


def test_plain_rendering_is_the_bare_question_by_default(plain_tokenizer: PreTrainedTokenizerFast) -> None:
    assert render_prompt(SUM, None) == "4-1-7="
    assert render_prompt(SUM, plain_tokenizer) == "4-1-7="
    fmt = PromptFormat(system_prompt="You add.", instruction="Answer with a number.")
    assert render_prompt(SUM, plain_tokenizer, fmt) == "You add.\n\n4-1-7=\nAnswer with a number."
    custom = PromptFormat(plain_template="Q: {question}\nA:")
    assert render_prompt(SUM, None, custom) == "Q: 4-1-7=\nA:"


def test_chat_template_is_used_when_present(chat_tokenizer: PreTrainedTokenizerFast) -> None:
    assert render_prompt(SUM, chat_tokenizer) == "<|im_start|>user\n4-1-7=<|im_end|>\n<|im_start|>assistant\n"
    fmt = PromptFormat(system_prompt="You add.", instruction="Answer with a number.")
    assert render_prompt(SUM, chat_tokenizer, fmt) == (
        "<|im_start|>system\nYou add.<|im_end|>\n"
        "<|im_start|>user\n4-1-7=\nAnswer with a number.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render_prompt(SUM, chat_tokenizer, PromptFormat(template="plain")) == "4-1-7="


def test_chat_prompts_keep_or_replace_their_system_message(chat_tokenizer: PreTrainedTokenizerFast) -> None:
    assert render_prompt(CHAT, chat_tokenizer) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+5=<|im_end|>\n<|im_start|>assistant\n"
    )
    assert prompt_messages(CHAT, PromptFormat(system_prompt="Think.")) == [
        {"role": "system", "content": "Think."},
        {"role": "user", "content": "2+5="},
    ]
    assert render_prompt(CHAT, None) == "Be brief.\n\n2+5="
    assert CHAT.messages is not None and CHAT.messages[1]["content"] == "2+5="  # the prompt is not modified


def test_chat_template_required_but_missing(plain_tokenizer: PreTrainedTokenizerFast) -> None:
    with pytest.raises(DataError, match=r"the tokenizer has no chat template; set data\.format\.template"):
        render_prompt(SUM, plain_tokenizer, PromptFormat(template="chat"))
    with pytest.raises(DataError, match="no tokenizer was given"):
        render_prompt(SUM, None, PromptFormat(template="chat"))
