"""Verifiers by name: the built-in ones, and users' own reward functions given as `module:function`.

Importing this module costs nothing: the config validates reward names against `VERIFIER_NAMES` before
anything starts, and each verifier's module (math-verify, reasoning-gym, transformers behind it) is
imported only when `get_verifier` builds that verifier.

A user's reward function is named `package.module:function` or `path/to/file.py:function` and called as
`function(response, answer, meta, **options)`; it must return a finite number. Its signature is checked when
it loads (`check_signature`), so a function that cannot take these arguments fails at once instead of on every
sample. Unlike the built-ins it may raise; the reward pool then scores that sample 0 and records the error.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

# name -> "module:factory"; a factory takes the verifier's options as keyword arguments and returns the
# scoring function `(response, answer, meta) -> float`.
_BUILTIN: dict[str, str] = {
    "math": "reasonrl.rewards.math:math_verifier",
    "exact": "reasonrl.rewards.match:exact_verifier",
    "numeric": "reasonrl.rewards.match:numeric_verifier",
    "countdown": "reasonrl.rewards.countdown:countdown_verifier",
    "format": "reasonrl.rewards.shaping:format_verifier",
    "overlong": "reasonrl.rewards.shaping:overlong_verifier",
    "gym": "reasonrl.rewards.gym:gym_verifier",
}

VERIFIER_NAMES: tuple[str, ...] = tuple(_BUILTIN)
"""The built-in verifiers. Each scores in [0, 1] except `overlong`, a penalty in [-1, 0]."""


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


def get_verifier(name: str, **options: Any) -> Verifier:
    """The verifier `name` with `options`; a ValueError naming the valid choices if either is unknown.

    Built-in verifiers never raise on odd input (None, numbers, bytes, megabytes of garbage): they score it 0.
    """
    if isinstance(name, str) and name in _BUILTIN:
        factory = _import_attribute(_BUILTIN[name])
        _check_options(name, factory, options)
        return Verifier(name, dict(options), factory(**options))
    if isinstance(name, str) and ":" in name:
        canonical = _canonical_reference(name)
        function = load_function(canonical)
        check_signature(canonical, function, options)
        score = partial(function, **options)
        return Verifier(canonical, dict(options), score)
    raise ValueError(
        f"unknown verifier {name!r}{_did_you_mean(name, VERIFIER_NAMES)}; use one of {list(VERIFIER_NAMES)} "
        "or your own function as 'package.module:function' or 'path/to/file.py:function'"
    )


def load_function(reference: str) -> Callable[..., Any]:
    """The function named by `module:function` or `file.py:function`; a clear ValueError if it is missing."""
    location, _, attribute = reference.rpartition(":")
    if not location or not attribute:
        raise ValueError(f"reward function {reference!r}: write it as 'package.module:function' or 'file.py:function'")
    try:
        module = _module_from_file(location) if location.endswith(".py") else importlib.import_module(location)
    except (ImportError, OSError, SyntaxError) as exc:
        raise ValueError(
            f"reward function {reference!r}: cannot import {location!r} ({type(exc).__name__}: {exc}); "
            "check the spelling and that it is on the Python path (or give a file path ending in .py)"
        ) from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"reward function {reference!r}: {location!r} has no function {attribute!r}")
    return function


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


def _canonical_reference(reference: str) -> str:
    """The reference with a file path made absolute, so processes with another working directory find it."""
    location, _, attribute = reference.rpartition(":")
    if location.endswith(".py"):
        return f"{Path(location).resolve()}:{attribute}"
    return reference


def _module_from_file(path: str) -> ModuleType:
    """Import a reward file once per process under a name derived from its path."""
    resolved = Path(path).resolve()
    name = "reasonrl_user_reward_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    if not resolved.is_file():
        raise FileNotFoundError(f"no file {resolved}")
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {resolved} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import_attribute(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _check_options(name: str, factory: Callable[..., Any], options: Mapping[str, Any]) -> None:
    parameters = inspect.signature(factory).parameters.values()
    valid = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = [key for key in options if key not in valid]
    if unknown:
        hint = _did_you_mean(unknown[0], valid)
        raise ValueError(f"verifier {name!r}: unknown option {unknown[0]!r}{hint}; its options are {valid}")
    missing = [p.name for p in parameters if p.default is inspect.Parameter.empty and p.name not in options]
    if missing:
        raise ValueError(f"verifier {name!r} needs option(s) {missing}")


def _did_you_mean(word: Any, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
