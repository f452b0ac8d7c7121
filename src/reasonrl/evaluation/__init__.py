"""Evaluation and test-time scaling: estimators, selection strategies, particle filtering, reports.

- `pass_at_k(n, c, k)`: the unbiased, numerically stable pass@k of one problem.
- Strategies (`strategies.py`): majority (self-consistency, maj@k), best-of-N, weighted majority and
  Best-of-Majority, pure functions of answer classes and scores; `parse_strategy("best_of_majority?alpha=0.3")`.
- `scaling.py`: accuracy against N = 1, 2, 4, ... for each strategy on shared subsets of stored samples, with
  bootstrap intervals over problems; `particles.py`: particle filtering with any rollout engine.
- `records.py` stores samples as jsonl; `annotate.py` fills in their verifier scores, answers, answer classes
  and scorer scores (`scorers.py`: logprob, reward:NAME, rm:PATH); `report.py` writes report.json /
  report.md / accuracy_vs_n.png.
- `heldout.py`: held-out accuracy during training (the training pipelines call it).

`reasonrl eval` (`pipelines/evaluation.py`) wires them together; see docs/evaluation.md.
"""

from reasonrl.evaluation.metrics import bootstrap_interval, n_schedule, pass_at_k
from reasonrl.evaluation.strategies import (
    STRATEGIES,
    best_of_majority,
    best_of_n,
    majority_vote,
    parse_strategy,
    weighted_majority,
)

__all__ = [
    "STRATEGIES",
    "best_of_majority",
    "best_of_n",
    "bootstrap_interval",
    "majority_vote",
    "n_schedule",
    "parse_strategy",
    "pass_at_k",
    "weighted_majority",
]
