"""Tokenizers for models built from scratch: byte-level (one token per byte) or a small trained BPE.

Both are `Qwen2Tokenizer`s, because transformers rebuilds any Qwen2 folder's tokenizer as Qwen2Tokenizer
(byte-level BPE with Qwen's pre-tokenizer regex) from its vocab and merges, ignoring a custom pipeline in
tokenizer.json. Building them that way from the start makes the saved folder load back identically in
transformers and vLLM. With no merges, the byte-level BPE is a character tokenizer for ASCII text that
still represents every other character (as its UTF-8 bytes) instead of mapping it to <unk>.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

PAD, EOS, IM_START, IM_END = "<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (PAD, EOS, IM_START, IM_END)

# ChatML, as Qwen2 uses it: a response ends with <|im_end|>, which is also the EOS the engines stop on.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# Tool use (rollout.environment): tool calls and results framed by single tokens, so generation stops exactly on
# `</tool_call>` and parsing is unambiguous, and tool turns rendered inside <tool_response> as Qwen2.5 does. The
# tools' schemas are not rendered: a character-level model would pay a token per character of JSON schema in
# every prompt, and it learns its tools from demonstrations and rewards.
TOOL_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
TOOL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'tool' %}"
    "{{ '<|im_start|>tool\n<tool_response>' + message['content'] + '</tool_response><|im_end|>' + '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _qwen2_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]], tools: bool = False) -> Qwen2Tokenizer:
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=EOS,
        eos_token=IM_END,
        pad_token=PAD,
        additional_special_tokens=[EOS, IM_START, *(TOOL_TOKENS if tools else ())],
        chat_template=TOOL_CHAT_TEMPLATE if tools else CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
    )


def byte_tokenizer(tools: bool = False) -> Qwen2Tokenizer:
    """One token per byte (so per character for ASCII): nothing to learn, any text representable. `tools`: the
    tool-call markers as single special tokens (appended after the bytes) and a template for tool turns."""
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    for token in TOOL_TOKENS if tools else ():
        vocab[token] = len(vocab)
    return _qwen2_tokenizer(vocab, [], tools)


def bpe_tokenizer(corpus: Iterable[str], vocab_size: int) -> Qwen2Tokenizer:
    """Byte-level BPE trained on `corpus` with Qwen2's pre-tokenizer: shorter sequences for longer tasks."""
    trainable = Tokenizer(models.BPE())
    trainable.normalizer = normalizers.NFC()
    trainable.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainable.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    trainable.train_from_iterator(corpus, trainer=trainer)
    model = trainable.model
    vocab = trainable.get_vocab()
    merges = [tuple(pair.split(" ", 1)) for pair in _merges_of(model)]
    return _qwen2_tokenizer(vocab, merges)  # type: ignore[arg-type]


def _merges_of(model: models.BPE) -> list[str]:
    """The trained merges, in rank order, as 'left right' strings (the BPE model exposes them only as JSON)."""
    import json

    state = json.loads(Tokenizer(model).to_str())["model"]["merges"]
    return [" ".join(pair) if isinstance(pair, list) else pair for pair in state]
