"""Score stored samples: the task's verifier, the extracted answers and their classes, and every scorer.

Runs right after generation and again on `--samples FILE`, so a stored file is re-scored exactly the way a
fresh one is scored, and a better verifier or a new reward model never needs new samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reasonrl.evaluation.records import EvalSample, group_problems
from reasonrl.evaluation.scorers import Scorer
from reasonrl.rewards import RewardPool
from reasonrl.rewards.equivalence import answer_key, group_answers


def score_stored(samples: Sequence[EvalSample], verifier: RewardPool, scorers: Mapping[str, Scorer]) -> None:
    """Fill each sample's verifier score, answer, answer class and scorer scores in place."""
    prompts = [s.prompt for s in samples]
    responses = [s.response for s in samples]
    # A response the verifier could not judge twice (the pool tries again) counts as not correct, and the
    # report says how many there were (`EvalSample.excluded`).
    for sample, result in zip(samples, verifier.score(prompts, responses), strict=True):
        sample.verifier_score = result.reward
        sample.verifier_error = result.error
    for problem in group_problems(samples):
        options = problem.prompt.meta.get("verifier_options", {})
        key = answer_key(problem.prompt.task, options if isinstance(options, Mapping) else {})
        answers = [key.extract(s.response) for s in problem.samples]
        for sample, answer, label in zip(problem.samples, answers, group_answers(answers, key), strict=True):
            sample.answer, sample.answer_class = answer, label
    for name, scorer in scorers.items():
        values = scorer(prompts, responses, [s.logprobs for s in samples])
        for sample, value in zip(samples, values, strict=True):
            sample.scores[name] = value
