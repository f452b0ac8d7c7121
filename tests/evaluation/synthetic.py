"""Synthetic problems: responses with a known answer distribution and a chosen scorer, no model needed."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from reasonrl.data import Prompt
from reasonrl.evaluation.records import EvalSample, Problem


def synthetic_problems(
    count: int,
    n: int,
    answers: Sequence[tuple[int, float]],
    *,
    score: Callable[[int, random.Random], float] = lambda label, rng: 0.0,
    seed: int = 0,
) -> list[Problem]:
    """`count` problems of `n` responses whose answer class is drawn from `answers` ((class, probability);
    class 0 is the right answer), each scored by `score(class, rng)` under the scorer name `noisy`."""
    rng = random.Random(seed)
    labels, weights = zip(*answers, strict=True)
    problems = []
    for p in range(count):
        prompt = Prompt(id=f"p{p}", answer="0", task="exact", text="q")
        samples = []
        for i in range(n):
            label = rng.choices(labels, weights)[0]
            sample = EvalSample(prompt, i, [], str(label), [], [], "stop", answer=str(label), answer_class=label)
            sample.verifier_score = 1.0 if label == 0 else 0.0
            sample.scores["noisy"] = score(label, rng)
            samples.append(sample)
        problems.append(Problem(prompt, samples))
    return problems
