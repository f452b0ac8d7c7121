"""Final answers out of worked solutions: GSM8K's `#### 42` line and MATH's last `\\boxed{...}`.

Both formats hide the ground truth inside free text; the verifier needs only the final answer, while the
full solution stays in `Prompt.meta` for warm-up and reports.
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\b")
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*)?\.?\d+(?:[eE][-+]?\d+)?(?:/\d+)?%?")


def gsm8k_final_answer(solution: str) -> str | None:
    """The text after the last `####` with thousands separators removed (`#### 1,200` -> `1200`), or None.

    GSM8K writes a few answers with commas; dropping them makes an exact comparison with a model's plain
    number fair, and math verifiers read either form.
    """
    _, marker, tail = solution.rpartition("####")
    if not marker:
        return None
    answer = tail.strip().replace(",", "")
    return answer or None


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`, or `\\boxed 5`) in `text`, braces balanced.

    A regex cannot match nested braces (`\\boxed{\\frac{1}{2}}`), so the content is found by counting them.
    Returns None when there is no box or its braces never close.
    """
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    if text.startswith(" ", start):
        # `\boxed 5`: the argument is the next token, as TeX reads it.
        token = text[start:].split(maxsplit=1)
        return token[0].rstrip("$.") if token else None
    if not text.startswith("{", start):
        return None
    depth = 0
    for position in range(start, len(text)):
        char = text[position]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : position].strip()
    return None


def looks_mathematical(answer: str) -> bool:
    """True for numbers, fractions, percentages and LaTeX: answers a math verifier compares better."""
    stripped = answer.strip()
    return bool(_NUMBER.fullmatch(stripped)) or any(marker in stripped for marker in ("\\", "^", "{", "$"))
