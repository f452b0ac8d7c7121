"""Finding the final answer in a model's response.

Every function here is linear in the response length and never raises, because responses are untrusted:
a policy can emit megabytes of unbalanced braces, and one slow or failing extraction must not cost a step.
"""

from __future__ import annotations

import re
from typing import Any, Literal

ExtractMode = Literal["auto", "answer_tag", "boxed", "none"]
EXTRACT_MODES: tuple[str, ...] = ("auto", "answer_tag", "boxed", "none")

# One scan finds box openings, escaped braces (`\{` in sets, which must not count) and plain braces.
_BRACE_TOKENS = re.compile(r"\\(?:boxed|fbox)\s*\{|\\[{}]|[{}]")
_GSM8K_MARK = re.compile(r"####[ \t]*([^\n]*)")
# "The answer is 2.5." / "Final answer: $x$": the answer runs to a full stop followed by a space or the end
# of the line, so the stop inside `2.5` does not cut it.
# No `\s*` before the terminator: with a lazy body that would rescan runs of spaces at every step (quadratic).
_ANSWER_IS = re.compile(r"answer\s*(?:is\b|:)[ \t:]*([^\n]*?)(?:\.(?=\s|$)|$)", re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")
# "$18" / "\$1,000": a currency sign, not a math delimiter.
_CURRENCY = re.compile(r"\\?\$\s*(-?\d[\d,]*(?:\.\d+)?)")
# "18 dollars", "3.5 km per hour": a number and then words; the words are a unit, not part of the answer.
_NUMBER_THEN_WORDS = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)\s+[A-Za-z]{2,}\b.*", re.DOTALL)
_MATH_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def as_text(value: Any) -> str:
    """Any input as text: None is empty, bytes are decoded leniently, anything else goes through `str`."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    try:
        return str(value)
    except Exception:  # an object whose __str__ raises is still odd input, never a crash
        return ""


def last_boxed(text: str) -> str | None:
    """Content of the last complete top-level `\\boxed{...}` (or `\\fbox{...}`), nested braces included.

    A box cut off by the length limit is not an answer, so the last *complete* one wins. One left-to-right
    pass with a stack keeps adversarial inputs (thousands of unclosed boxes) linear.
    """
    stack: list[int | None] = []  # content start for a box opening, None for a plain brace
    open_boxes = 0
    best: tuple[int, int] | None = None
    for token in _BRACE_TOKENS.finditer(text):
        symbol = token.group()
        if symbol.startswith("\\") and symbol.endswith("{") and len(symbol) > 2:
            stack.append(token.end())
            open_boxes += 1
        elif symbol == "{":
            stack.append(None)
        elif symbol == "}" and stack:
            start = stack.pop()
            if start is not None:
                open_boxes -= 1
                if open_boxes == 0:
                    best = (start, token.start())
    return None if best is None else text[best[0] : best[1]]


def answer_tag(text: str) -> str | None:
    """Content of the last `<answer>...</answer>` block.

    Two reverse searches instead of a lazy regex, which would rescan to the end from every unclosed tag.
    """
    end = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, end) if end >= 0 else -1
    return None if start < 0 else text[start + len("<answer>") : end]


def gsm8k_answer(text: str) -> str | None:
    """What follows the last GSM8K `####` marker on its line."""
    matches = _GSM8K_MARK.findall(text)
    return matches[-1] if matches else None


def answer_phrase(text: str) -> str | None:
    """The answer of the last "The answer is ..." / "Answer: ..." sentence, without a unit after a number."""
    matches = _ANSWER_IS.findall(text)
    if not matches:
        return None
    with_unit = _NUMBER_THEN_WORDS.fullmatch(matches[-1].strip())
    return with_unit.group(1) if with_unit else matches[-1]


def last_number(text: str) -> str | None:
    """The last number in the text (`-1,234.5`, `3/4`), the loosest reading of a free-form answer."""
    matches = _NUMBER.findall(text)
    return matches[-1] if matches else None


def clean_answer(answer: str | None) -> str | None:
    """Strip what surrounds an answer but is no part of it: delimiters, bold, a currency sign, a full stop."""
    if answer is None:
        return None
    text = answer.strip()
    # A few rounds cover real nesting (`**$42$**.`); a fixed bound keeps `$$$$...` inputs linear.
    for _ in range(3):
        if text.endswith((".", ",")) and not text.endswith(".."):
            text = text[:-1].rstrip()
        for opening, closing in (*_MATH_DELIMITERS, ("**", "**")):
            if len(text) >= len(opening) + len(closing) and text.startswith(opening) and text.endswith(closing):
                text = text[len(opening) : len(text) - len(closing)].strip()
    currency = _CURRENCY.fullmatch(text)
    return (currency.group(1) if currency else text) or None


def extract_answer(text: str, mode: ExtractMode = "auto") -> str | None:
    """The answer part of a response, for verifiers that compare whole answers (exact, numeric, gym, ...).

    `answer_tag`: the last `<answer>` block; `boxed`: the last `\\boxed{}`; `none`: the whole response;
    `auto`: the tag if there is one, else the box, else the whole response. The result is stripped of math
    delimiters and a final full stop; None when nothing was found.
    """
    if mode == "answer_tag":
        return clean_answer(answer_tag(text))
    if mode == "boxed":
        return clean_answer(last_boxed(text))
    if mode == "none":
        return clean_answer(text)
    tagged = answer_tag(text)
    if tagged is not None:
        return clean_answer(last_boxed(tagged) or tagged)
    boxed = last_boxed(text)
    return clean_answer(boxed if boxed is not None else text)


def final_answer(text: str, *, last_number_fallback: bool) -> str | None:
    """The final answer of a free-form math response.

    In order: the last `\\boxed{}`, the last GSM8K `####` line, the last "the answer is" sentence, and (when
    `last_number_fallback`) the last number anywhere. Explicit markers win over phrases because a model that
    boxes an answer and then keeps talking still meant the box.
    """
    for extractor in (last_boxed, gsm8k_answer, answer_phrase):
        found = clean_answer(extractor(text))
        if found is not None:
            return found
    return last_number(text) if last_number_fallback else None


def check_extract_mode(mode: Any) -> ExtractMode:
    """`mode` if it names an extraction mode, else a ValueError listing them."""
    if mode not in EXTRACT_MODES:
        raise ValueError(f"unknown extract mode {mode!r}; use one of {list(EXTRACT_MODES)}")
    return mode
