"""Presets: reasoning-gym generators with fixed options and a short question form, for tiny models.

A ~1M-parameter character-level model trained on a laptop CPU cannot read reasoning-gym's sentence-long
questions, but it can learn `4-1-7=` -> `-4` in minutes. A preset keeps reasoning-gym as the generator
(its entries stay in `meta["gym_entry"]`, so the gym scorer still applies) and only rewrites the question.
Difficulty is adjustable through the generator's own options, e.g. `sum?max_terms=4&max_digits=2`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def compact_expression(entry: dict[str, Any]) -> str:
    """`4 - 1 - 7` from the entry's metadata as `4-1-7=`: few characters, one token each."""
    return entry["metadata"]["expression"].replace(" ", "") + "="


def binary_number(entry: dict[str, Any]) -> str:
    """count_bits' number in binary, `101011110100=`: the digits to add up, one token each."""
    return entry["metadata"]["binary"] + "="


def caesar_shift(entry: dict[str, Any]) -> str:
    """caesar_cipher's cipher text and rotation as `WKH-3=`: shift each letter back 3 to get `THE`."""
    return f"{entry['metadata']['cipher_text']}-{entry['metadata']['rotation']}="


@dataclass(frozen=True)
class Preset:
    """A named reasoning-gym generator with preset options, its short question form and its verifier."""

    name: str
    description: str
    gym_task: str
    defaults: dict[str, Any] = field(default_factory=dict)
    render: Callable[[dict[str, Any]], str] = compact_expression
    # Exact match rather than the gym scorer: reasoning-gym gives partial credit when the true answer is a
    # substring of the response (`-4` scores 0.5 against `4`), a reward a policy can learn to exploit.
    verifier: str = "exact"


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="sum",
            description="2-3 one-digit numbers added or subtracted: 4-1-7= -> -4 (reasoning-gym chain_sum)",
            gym_task="chain_sum",
            defaults={"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 1},
        ),
        Preset(
            name="add2",
            description="sum of two numbers from 0 to 100: 32+15= -> 47 (reasoning-gym basic_arithmetic)",
            gym_task="basic_arithmetic",
            defaults={
                "min_terms": 2,
                "max_terms": 2,
                "min_digits": 2,
                "max_digits": 2,
                "operators": ["+"],
                "allow_parentheses": False,
                "allow_negation": False,
            },
        ),
        Preset(
            name="mul",
            description="a product of two numbers below 100: 84*15= -> 1260; out of reach of a tiny model's mental "
            "arithmetic, the task of the calculator agent (rollout.environment: calculator; reasoning-gym "
            "basic_arithmetic)",
            gym_task="basic_arithmetic",
            defaults={
                "min_terms": 2,
                "max_terms": 2,
                "min_digits": 2,
                "max_digits": 2,
                "operators": ["*"],
                "allow_parentheses": False,
                "allow_negation": False,
            },
        ),
        Preset(
            name="bits",
            description="count the 1 bits of a 12-bit number written in binary: 101011110100= -> 7 "
            "(reasoning-gym count_bits)",
            gym_task="count_bits",
            defaults={"min_n": 2**11, "max_n": 2**12 - 1},
            render=binary_number,
        ),
        Preset(
            name="caesar",
            description="decrypt one word of English text, its Caesar rotation given: WKH-3= -> THE; words are "
            "drawn as they occur in a book, so answer lengths have a long tail (reasoning-gym caesar_cipher)",
            gym_task="caesar_cipher",
            # Splitting the book at spaces instead of full stops makes every "sentence" one word.
            # A fixed rotation keeps it within reach of the tiny model (rotations 1-25: 0.03 held-out accuracy
            # after a 600-step warm-up); `caesar?min_rotation=1&max_rotation=25` is the harder variant.
            defaults={"delimiter": " ", "min_words": 1, "max_words": 1, "min_rotation": 3, "max_rotation": 3},
            render=caesar_shift,
        ),
    )
}
