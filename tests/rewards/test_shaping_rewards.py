"""Format and overlong shaping."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonrl.rewards import get_verifier


@pytest.mark.parametrize(
    ("options", "response", "expected"),
    [
        ({}, "<think>add them</think><answer>4</answer>", 1.0),
        ({}, "<think>add them</think>\n<answer>4</answer> trailing words", 1.0),
        ({"strict": True}, "<think>add them</think>\n<answer>4</answer>\n", 1.0),
        ({"strict": True}, "<think>add them</think>\n<answer>4</answer> trailing words", 0.0),
        ({"strict": True}, "intro <think>a</think><answer>4</answer>", 0.0),
        ({}, "<answer>4</answer><think>add them</think>", 0.0),
        ({}, "<think>add them</think>", 0.0),
        ({}, "<think>  </think><answer>4</answer>", 0.0),
        ({}, "<think>a</think><answer>4</answer><answer>5</answer>", 0.0),
        ({}, "<think>a<answer>4</answer></think>", 0.0),
        ({"tags": ["answer"]}, "<answer>4</answer>", 1.0),
        ({"tags": [], "boxed": True}, r"so \boxed{4}", 1.0),
        ({"tags": [], "boxed": True}, "so 4", 0.0),
        ({"boxed": True}, r"<think>a</think><answer>\boxed{4}</answer>", 1.0),
        ({"boxed": True}, "<think>a</think><answer>4</answer>", 0.0),
    ],
)
def test_format(options: dict, response: str, expected: float) -> None:
    assert get_verifier("format", **options)(response, None) == expected


def test_format_needs_a_requirement() -> None:
    with pytest.raises(ValueError, match="nothing to check"):
        get_verifier("format", tags=[])
    with pytest.raises(ValueError, match="option 'tags' = 'think' is invalid: Input should be a valid list"):
        get_verifier("format", tags="think")


@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, 0.0), (80, 0.0), (81, -0.05), (90, -0.5), (99, -0.95), (100, -1.0), (101, -1.0), (10_000, -1.0)],
)
def test_overlong_soft_punishment(length: int, expected: float) -> None:
    verifier = get_verifier("overlong", max_length=100, buffer=20)
    assert verifier("x" * length, None) == pytest.approx(expected, abs=1e-12)


def test_overlong_buffer_equal_to_max_length() -> None:
    verifier = get_verifier("overlong", max_length=4, buffer=4)
    assert [verifier("x" * n, None) for n in range(6)] == [0.0, -0.25, -0.5, -0.75, -1.0, -1.0]


def test_overlong_options() -> None:
    with pytest.raises(ValueError, match="needs option"):
        get_verifier("overlong", max_length=10)
    with pytest.raises(ValueError, match="must not exceed max_length"):
        get_verifier("overlong", max_length=10, buffer=11)
    with pytest.raises(ValueError, match="needs `tokenizer`"):
        get_verifier("overlong", max_length=10, buffer=5, unit="tokens")
    with pytest.raises(ValueError, match="option 'unit' = 'words' is invalid: Input should be 'chars' or 'tokens'"):
        get_verifier("overlong", max_length=10, buffer=5, unit="words")


@pytest.mark.slow
def test_overlong_counts_tokens_with_a_real_tokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]").save_pretrained(tmp_path)
    verifier = get_verifier("overlong", max_length=4, buffer=2, unit="tokens", tokenizer=str(tmp_path))
    assert verifier("a a", None) == 0.0
    assert verifier("a b c", None) == -0.5  # three words, three tokens, however many characters
    assert verifier("aaaaaaaaaaaaaaaaaaaa", None) == 0.0
    assert verifier("a a a a a", None) == -1.0
