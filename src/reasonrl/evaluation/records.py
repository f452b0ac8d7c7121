"""Stored evaluation samples: one JSON line per response, with everything every metric needs.

An evaluation generates once and computes every metric and strategy from these records, so strategies are
compared on the very same responses and `reasonrl eval --samples FILE` can re-score (new scorer, fixed
verifier) without generating. Each line is self-contained (it carries its prompt), so a file can be
filtered or concatenated with ordinary tools.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonrl.data import Prompt
from reasonrl.rewards.equivalence import NO_ANSWER
from reasonrl.rewards.excluded import is_excluded_error


@dataclass
class EvalSample:
    """One response to one problem: tokens and behaviour log-probs as generated, then what scoring found.

    `verifier_score` is the task's verifier (correct = 1.0); `answer` the extracted answer and `answer_class`
    its equivalence class among the problem's responses; `scores` one value per scorer (`logprob`, ...).
    """

    prompt: Prompt
    index: int
    prompt_ids: list[int]
    response: str
    response_ids: list[int]
    logprobs: list[float]
    finish_reason: str
    answer: str | None = None
    answer_class: int = NO_ANSWER
    verifier_score: float = 0.0
    verifier_error: str | None = None
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def correct(self) -> float:
        return 1.0 if self.verifier_score >= 1.0 else 0.0

    @property
    def excluded(self) -> bool:
        """The verifier could not judge it, even when asked twice (the code sandbox failed): it counts as not
        correct, and the report says how many there were."""
        return is_excluded_error(self.verifier_error)

    def to_json(self) -> dict[str, Any]:
        prompt = self.prompt
        return {
            "problem_id": prompt.id,
            "index": self.index,
            "prompt": {
                "text": prompt.text,
                "messages": prompt.messages,
                "answer": prompt.answer,
                "task": prompt.task,
                "meta": prompt.meta,
            },
            "response": self.response,
            "answer": self.answer,
            "answer_class": self.answer_class,
            "verifier_score": self.verifier_score,
            "verifier_error": self.verifier_error,
            "scores": self.scores,
            "finish_reason": self.finish_reason,
            "prompt_ids": self.prompt_ids,
            "response_ids": self.response_ids,
            "logprobs": self.logprobs,
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> EvalSample:
        stored = row["prompt"]
        prompt = Prompt(
            id=row["problem_id"],
            answer=stored["answer"],
            task=stored["task"],
            text=stored.get("text"),
            messages=stored.get("messages"),
            meta=stored.get("meta") or {},
        )
        return cls(
            prompt=prompt,
            index=int(row["index"]),
            prompt_ids=list(row.get("prompt_ids", [])),
            response=row["response"],
            response_ids=list(row.get("response_ids", [])),
            logprobs=[float(v) for v in row["logprobs"]],
            finish_reason=row.get("finish_reason", "stop"),
            answer=row.get("answer"),
            answer_class=int(row.get("answer_class", NO_ANSWER)),
            verifier_score=float(row.get("verifier_score", 0.0)),
            verifier_error=row.get("verifier_error"),
            scores={k: float(v) for k, v in (row.get("scores") or {}).items()},
        )


def write_samples(path: Path, samples: Iterable[EvalSample]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for sample in samples:
            out.write(json.dumps(sample.to_json(), ensure_ascii=False, default=str) + "\n")
    return path


def read_samples(path: Path) -> list[EvalSample]:
    """The samples stored in `path`; a missing file or a malformed line is an error naming file and line."""
    if not path.is_file():
        raise FileNotFoundError(
            f"--samples {path}: no such file; give the samples.jsonl that an earlier `reasonrl eval` wrote"
        )
    samples = []
    with path.open(encoding="utf-8") as rows:
        for number, line in enumerate(rows, start=1):
            if not line.strip():
                continue
            try:
                samples.append(EvalSample.from_json(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{path}:{number}: not a stored evaluation sample ({type(exc).__name__}: {exc}); "
                    "samples files are written by `reasonrl eval` (one JSON object per line)"
                ) from None
    if not samples:
        raise ValueError(f"{path}: no samples in the file; it must hold the lines an earlier `reasonrl eval` wrote")
    return samples


@dataclass
class Problem:
    """One problem's stored responses, in sampling order."""

    prompt: Prompt
    samples: list[EvalSample]

    @property
    def classes(self) -> list[int]:
        return [s.answer_class for s in self.samples]

    @property
    def correct(self) -> list[float]:
        return [s.correct for s in self.samples]

    def scores(self, scorer: str) -> list[float]:
        return [s.scores[scorer] for s in self.samples]


def group_problems(samples: Sequence[EvalSample]) -> list[Problem]:
    """Samples grouped by problem id, problems in order of first appearance, samples by their index."""
    problems: dict[str, Problem] = {}
    for sample in samples:
        problem = problems.get(sample.prompt.id)
        if problem is None:
            problems[sample.prompt.id] = Problem(sample.prompt, [sample])
        else:
            problem.samples.append(sample)
    for problem in problems.values():
        problem.samples.sort(key=lambda s: s.index)
    return list(problems.values())
