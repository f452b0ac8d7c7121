"""`reasonrl eval` in a log (no terminal): generation reports every ~10% of the problems with an ETA."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import pytest
from rich.console import Console

from reasonrl.data import Prompt
from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings
from reasonrl.pipelines import evaluation
from reasonrl.pipelines.evaluation import ModelSession, generate

LINE = re.compile(r"generating: (\d+)/200 problems \(\d+%\)(?: elapsed=\d+:\d\d:\d\d eta=\d+:\d\d:\d\d)?")


class CountingEngine:
    """Answers every request with one token, and counts its calls (one per chunk of problems)."""

    version = 0

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[Generation]:
        self.calls += 1
        return [Generation([7], [-0.5], "stop", "7") for _ in requests]

    def close(self) -> None:
        pass


def test_generation_in_a_log_prints_a_line_per_tenth_of_the_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluation, "_RESPONSES_PER_CALL", 40)  # 5 problems of 8 samples per engine call
    engine = CountingEngine()
    session = ModelSession(engine=engine, tokenizer=None, encode=lambda prompt: [1, 2], device="cpu")  # type: ignore[arg-type]
    prompts = [Prompt(id=f"p{i}", answer="7", task="exact", text=f"{i}+7-{i}=") for i in range(200)]
    out = io.StringIO()
    samples = generate(prompts, 8, session, SamplingSettings(max_new_tokens=4), Console(file=out, force_terminal=False))
    assert len(samples) == 1600 and engine.calls == 40
    lines = out.getvalue().splitlines()
    assert all(LINE.fullmatch(line) for line in lines), lines
    assert [int(LINE.fullmatch(line).group(1)) for line in lines] == list(range(0, 201, 20))  # type: ignore[union-attr]
    assert "eta=" in lines[1] and lines[-1].endswith("eta=0:00:00")
