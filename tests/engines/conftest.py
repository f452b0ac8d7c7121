"""A tiny model, tokenizer and rendered prompts shared by the engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

QUESTIONS = ["4-1-7=", "23+45=", "9+9=", "What is 6*7?", "1-1=", "8-3+2="]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def model(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def prompt_ids(tokenizer) -> list[list[int]]:  # type: ignore[no-untyped-def]
    return [
        tokenizer(
            tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True),
            add_special_tokens=False,
        )["input_ids"]
        for q in QUESTIONS
    ]
