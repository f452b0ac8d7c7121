"""A weighted sum of verifiers that keeps every component, for `reward.functions`.

The components are reported unweighted (`format: 1.0`, not `0.1`) so metrics read the same whatever the
weights; the total is `sum(weight * component)` and is not clipped (an `overlong` term can make it negative).
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from reasonrl.rewards.excluded import RewardUnavailable
from reasonrl.rewards.registry import Verifier


class ComponentError(Exception):
    """A component of a weighted reward raised; the message names the component. The second argument is the
    component's traceback as text: it is formatted where the verifier ran, since the error may cross a
    process boundary (the reward workers) that drops traceback objects."""

    @property
    def traceback(self) -> str | None:
        return self.args[1] if len(self.args) > 1 else None


class ComponentUnavailable(Exception):
    """A component of a weighted reward could not judge the response (it raised `RewardUnavailable`); the
    arguments are the component's key and the reason. Kept apart from `ComponentError`: the sample is excluded
    from training, never scored 0 as if the response were wrong."""

    @property
    def component(self) -> str:
        return str(self.args[0])

    @property
    def reason(self) -> str:
        return str(self.args[1])


def component_names(names: Sequence[str]) -> list[str]:
    """One key per term: its verifier name (a user function's own name), `#2`, `#3`... added on repeats."""
    names = [name.rpartition(":")[2] for name in names]
    totals = Counter(names)
    seen: Counter[str] = Counter()
    keys = []
    for name in names:
        seen[name] += 1
        keys.append(name if totals[name] == 1 or seen[name] == 1 else f"{name}#{seen[name]}")
    return keys


def weighted_sum(
    terms: Sequence[tuple[str, float, Verifier]], response: Any, answer: Any, meta: Mapping[str, Any] | None
) -> tuple[float, dict[str, float]]:
    """(total, components) of `(key, weight, verifier)` terms for one response."""
    components: dict[str, float] = {}
    total = 0.0
    for key, weight, verifier in terms:
        try:
            value = verifier(response, answer, meta)
        except RewardUnavailable as exc:
            raise ComponentUnavailable(key, str(exc) or type(exc).__name__) from exc
        except Exception as exc:
            message = f"reward {key!r} failed: {type(exc).__name__}: {exc}"
            raise ComponentError(message, traceback.format_exc()) from exc
        components[key] = value
        total += weight * value
    return total, components
