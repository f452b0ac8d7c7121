"""Scoring one response under a wall-clock limit, the same way in a worker process and in the caller's.

A reward is described by `Term`s, `(verifier name, weight, options)`: plain data that crosses process
boundaries, from which each process builds (and caches) its own verifiers. Nothing a reward does, raising,
hanging, returning garbage, escapes `score_sample`: it becomes a 0 reward with the error kept. The one
exception to "0 with the error" is `RewardUnavailable` (`excluded.py`): a verifier that could not judge the
response through no fault of the response gets it excluded (`info["excluded"]`), not scored as wrong.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reasonrl.rewards.combine import ComponentError, ComponentUnavailable, component_names, weighted_sum
from reasonrl.rewards.deadline import DeadlineExceeded, call_with_deadline
from reasonrl.rewards.excluded import EXCLUDED_PREFIX, RewardUnavailable
from reasonrl.rewards.registry import Verifier, get_verifier

Term = tuple[str, float, dict[str, Any]]
"""One weighted component of a reward: (verifier name, weight, options)."""


@dataclass
class RewardResult:
    """The reward of one response, its unweighted components by name, and why it is 0 if something failed.

    `info` carries what a group-level reward step learned about the response (e.g. the majority pseudo-label
    of TTRL) for metrics and rollout dumps; plain per-sample scoring leaves it empty, except for a verifier's
    traceback and `excluded: True` when a verifier raised `RewardUnavailable` (see `excluded`).
    """

    reward: float
    components: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def excluded(self) -> bool:
        """Whether a verifier could not judge the response (`RewardUnavailable`): the 0 is no verdict."""
        return bool(self.info.get("excluded", False))


_verifiers: dict[str, Verifier] = {}


def term_key(term: Term) -> str:
    """A stable identity for a term's verifier (name and options; the weight does not change the verifier)."""
    name, _, options = term
    return name + "\0" + json.dumps(options, sort_keys=True, default=repr)


def verifier_for(term: Term) -> Verifier:
    """The term's verifier, built once per process: building may import math-verify or reasoning-gym."""
    key = term_key(term)
    verifier = _verifiers.get(key)
    if verifier is None:
        verifier = _verifiers[key] = get_verifier(term[0], **term[2])
    return verifier


def score_sample(
    terms: Sequence[Term], response: Any, answer: Any, meta: Mapping[str, Any] | None, timeout_seconds: float
) -> RewardResult:
    """The weighted reward of one response, limited to `timeout_seconds` of wall-clock time."""
    start = time.perf_counter()
    try:
        # Built outside the limit: a first-time import is not the response's fault.
        keys = component_names([name for name, _, _ in terms])
        weighted = [(key, float(term[1]), _build(key, term)) for key, term in zip(keys, terms, strict=True)]
        reward, components = call_with_deadline(weighted_sum, weighted, response, answer, meta, seconds=timeout_seconds)
    except DeadlineExceeded:
        error = (
            f"timeout: scoring took longer than {timeout_seconds:g} s; raise reward.timeout_seconds "
            "or make the verifier faster"
        )
        return RewardResult(0.0, {}, error, time.perf_counter() - start)
    except ComponentUnavailable as exc:  # no verdict at all: excluded from training, never a wrong answer
        error = f"{EXCLUDED_PREFIX}{exc.component}: {exc.reason}"
        return RewardResult(0.0, {}, error, time.perf_counter() - start, {"excluded": True})
    except ComponentError as exc:  # the verifier raised: its message, and its traceback for the run's report
        info = {"traceback": exc.traceback} if exc.traceback else {}
        return RewardResult(0.0, {}, str(exc.args[0]), time.perf_counter() - start, info)
    except Exception as exc:
        return RewardResult(0.0, {}, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
    return RewardResult(reward, components, None, time.perf_counter() - start)


def _build(key: str, term: Term) -> Verifier:
    """`verifier_for(term)`; a verifier that cannot be built for want of its resources (`RewardUnavailable`,
    e.g. no sandbox) cannot judge this response either."""
    try:
        return verifier_for(term)
    except RewardUnavailable as exc:
        raise ComponentUnavailable(key, str(exc) or type(exc).__name__) from exc
