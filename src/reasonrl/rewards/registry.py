"""Verifiers by name: the built-in ones, and users' own reward functions given as `module:function`.

The built-ins live in `VERIFIERS`, a `reasonrl.plugins.Registry` like every other family of parts. Importing
this module costs nothing: the config validates reward names against `VERIFIERS` before anything starts,
and each verifier's module (math-verify, reasoning-gym, transformers behind it) is imported only when a
verifier of it is checked or built.

A user's reward function is named `package.module:function` or `path/to/file.py:function` and called as
`function(response, answer, meta, **options)`; it must return a finite number. Its signature is checked when
it loads (`check_signature`), so a function that cannot take these arguments fails at once instead of on every
sample. Unlike the built-ins it may raise; the reward pool then scores that sample 0 and records the error.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from reasonrl.plugins import Registry, canonical_reference, is_reference

VERIFIERS: Registry[Callable[..., Any]] = Registry(
    "verifier",
    call="fn(response: str, answer: Any, meta: dict, *, <options>) -> float (built-ins: a factory taking the "
    "options and returning that function)",
)
"""The built-in verifiers, each a factory: it takes the verifier's options as keyword arguments and returns the
scoring function `(response, answer, meta) -> float`. Each scores in [0, 1] except `overlong`, a penalty in
[-1, 0]. Registered lazily: a verifier's module (math-verify, reasoning-gym) is imported only when built."""
for _name, _target in {
    "math": "reasonrl.rewards.math:math_verifier",
    "exact": "reasonrl.rewards.match:exact_verifier",
    "numeric": "reasonrl.rewards.match:numeric_verifier",
    "countdown": "reasonrl.rewards.countdown:countdown_verifier",
    "format": "reasonrl.rewards.shaping:format_verifier",
    "overlong": "reasonrl.rewards.shaping:overlong_verifier",
    "gym": "reasonrl.rewards.gym:gym_verifier",
    "code": "reasonrl.rewards.code:code_verifier",
}.items():
    VERIFIERS.register_lazy(_name, _target)


@dataclass(frozen=True)
class Verifier:
    """A reward function bound to its options: `verifier(response, answer, meta=None) -> float`.

    It pickles as its recipe (name and options) and is rebuilt on the other side, so verifiers travel to
    worker processes even when their scoring function (a compiled pattern, a loaded tokenizer) would not.
    """

    name: str
    options: Mapping[str, Any]
    score: Callable[[Any, Any, Mapping[str, Any] | None], Any] = field(repr=False, compare=False)

    def __call__(self, response: Any, answer: Any, meta: Mapping[str, Any] | None = None) -> float:
        value = self.score(response, answer, meta)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise TypeError(f"reward {self.name!r} returned {value!r}; a reward must be a finite number")
        return float(value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.name, dict(self.options)))


def _rebuild(name: str, options: dict[str, Any]) -> Verifier:
    return get_verifier(name, **options)


def check_verifier(name: str, options: Mapping[str, Any]) -> None:
    """Check `options` against verifier `name` without building it (no heavy import): the config does this
    when it loads, so a mistyped option stops the run before it starts."""
    VERIFIERS.known(name)
    if not is_reference(name):
        VERIFIERS.check(name, options)
    else:
        canonical = canonical_reference(name)
        check_signature(canonical, VERIFIERS.get(canonical), options)


def get_verifier(name: str, **options: Any) -> Verifier:
    """The verifier `name` with `options`; a ValueError naming the valid choices if either is unknown.

    Built-in verifiers never raise on odd input (None, numbers, bytes, megabytes of garbage): they score it 0.
    """
    VERIFIERS.known(name)
    if not is_reference(name):
        checked = VERIFIERS.check(name, options)
        return Verifier(name, checked, VERIFIERS.get(name)(**checked))
    canonical = canonical_reference(name)
    function = VERIFIERS.get(canonical)
    check_signature(canonical, function, options)
    return Verifier(canonical, dict(options), partial(function, **options))


USER_SIGNATURE = "(response: str, answer: Any, meta: dict) -> float"
"""How reasonrl calls a user's reward function (options follow as keyword arguments). `answer` is the data's
reference answer, usually a string; the result must be a finite int or float (not a bool)."""


def check_signature(reference: str, function: Callable[..., Any], options: Mapping[str, Any]) -> None:
    """A ValueError at load time if `function` cannot be called as `function(response, answer, meta, **options)`.

    Without this check a function with the wrong parameters raises a TypeError on every sample, which the reward
    pool turns into a 0 reward per sample: the run trains on nothing and says nothing.
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a C function without an introspectable signature: its first call will tell
    try:
        signature.bind("response", "answer", {}, **options)
    except TypeError as exc:
        given = f" and options {sorted(options)}" if options else ""
        raise ValueError(
            f"reward function {reference!r} has the signature {signature}, but reasonrl calls it with three "
            f"positional arguments{given}: {USER_SIGNATURE} ({exc}). Define it as e.g. "
            "`def reward(response, answer, meta=None, **options):` (or accept *args), returning a finite number"
        ) from exc
