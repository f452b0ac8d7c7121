"""Rewards: verifiers that score a response against a reference, and a pool that runs them safely.

- `get_verifier(name, **options)` returns `verifier(response, answer, meta=None) -> float`: `math`
  (math-verify equivalence of the final answer), `exact`, `numeric`, `countdown`, `format`, `gym`
  (reasoning-gym's scorers), `code` (programs run against tests in a sandbox, docs/code.md) in [0, 1], and
  `overlong` (DAPO's length penalty) in [-1, 0]. Built-ins never raise on odd input (`code` does on a
  malformed reference: a data error). Your own function plugs in as `"package.module:function"` or
  `"file.py:function"`.
- `RewardPool` scores batches in worker processes with per-sample wall-clock limits; a reward that
  raises, hangs or kills its worker scores that sample 0 with the error in `RewardResult.error`.
- A verifier that cannot judge a response through no fault of the response (the `code` reward's sandbox
  did not start) raises `RewardUnavailable`: the sample is excluded from training and counted, not scored 0.
- `call_with_deadline` is the wall-clock limit itself, usable on any thread.

Importing this package is cheap; math-verify, sympy and reasoning-gym load when a verifier needs them.
"""

from reasonrl.rewards.deadline import DeadlineExceeded, call_with_deadline
from reasonrl.rewards.excluded import RewardUnavailable
from reasonrl.rewards.pool import RewardPool
from reasonrl.rewards.registry import VERIFIERS, Verifier, get_verifier
from reasonrl.rewards.single_response import RewardResult, Term

__all__ = [
    "VERIFIERS",
    "DeadlineExceeded",
    "RewardPool",
    "RewardResult",
    "RewardUnavailable",
    "Term",
    "Verifier",
    "call_with_deadline",
    "get_verifier",
]
