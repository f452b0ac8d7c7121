"""Registries: the one list of names for every family of parts a config selects, open to users' own code.

Every family (advantage estimators, policy losses, behaviour corrections, loss aggregations, KL estimators,
verifiers, rollout engines, test-time strategies) is a `Registry`. A config names a built-in entry, or the
user's own function as `package.module:name` or `path/to/file.py:name`; the registry resolves both the same
way, so a user extends reasonrl from a file of their own without editing it (the registry idea of verl's
`@register_adv_est`, opened to references as reward functions always were).

A plug-in declares its options as keyword-only parameters. `check(name, options)` binds an options mapping
to that signature before a run starts: an unknown option (with a "did you mean"), a missing required one,
or a value of the wrong type is a ValueError then, not a TypeError on the first step. Some keyword-only
parameters are not options but context reasonrl supplies when the plug-in declares them (e.g. the longest
response length of a loss aggregation); the registry names them in `context` and never takes them from
the user.

Importing this module costs nothing (no torch): built-in entries may be registered lazily as
`"module:attribute"` strings, imported when first used.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

PLUGIN_SYNTAX = "'package.module:name' or 'path/to/file.py:name'"

FAMILIES: dict[str, str] = {
    "advantage": "reasonrl.algorithms.advantages:ADVANTAGES",
    "policy_loss": "reasonrl.algorithms.policy_losses:POLICY_LOSSES",
    "correction": "reasonrl.algorithms.corrections:CORRECTIONS",
    "loss_aggregation": "reasonrl.algorithms.aggregation:LOSS_AGGREGATIONS",
    "kl_estimator": "reasonrl.algorithms.kl:KL_ESTIMATORS",
    "verifier": "reasonrl.rewards.registry:VERIFIERS",
    "engine": "reasonrl.engines.factory:ENGINES",
    "strategy": "reasonrl.evaluation.strategies:STRATEGIES",
    "environment": "reasonrl.agents.registry:ENVIRONMENTS",
}
"""Every registry by family, imported when first asked for (the config validates names through these)."""


def registry(family: str) -> Registry[Any]:
    """The registry of `family` (a key of `FAMILIES`), importing its module on first use."""
    module, _, attribute = FAMILIES[family].partition(":")
    return getattr(importlib.import_module(module), attribute)  # type: ignore[no-any-return]


def suggest(word: object, choices: Collection[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def is_reference(name: str) -> bool:
    """Whether `name` points at user code (`module:name` / `file.py:name`) rather than a registered name."""
    return ":" in name


class Registry(Generic[F]):
    """Named callables of one family (`kind` names it in messages; `call` says how reasonrl calls one, for
    errors and `reasonrl config docs`; `context`: keyword-only parameters reasonrl fills, not options)."""

    def __init__(self, kind: str, *, call: str, context: Collection[str] = ()) -> None:
        self.kind = kind
        self.call = call
        self.context = frozenset(context)
        self._entries: dict[str, F | str] = {}
        self._signatures: dict[str, inspect.Signature] = {}  # read per micro-batch by the trainer

    # ---- filling ------------------------------------------------------------------------------------
    def register(self, name: str) -> Callable[[F], F]:
        """Decorator filing the function under `name`; registering a name twice is an error."""

        def decorator(fn: F) -> F:
            self._add(name, fn)
            return fn

        return decorator

    def register_lazy(self, name: str, target: str) -> None:
        """File `module:attribute` under `name`, imported on first use (for entries whose module is heavy)."""
        self._add(name, target)

    def _add(self, name: str, entry: F | str) -> None:
        if is_reference(name):
            raise ValueError(f"{self.kind} name {name!r} must not contain ':' (that syntax names user code)")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered; pick another name")
        self._entries[name] = entry

    # ---- looking up ---------------------------------------------------------------------------------
    def names(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def known(self, name: str) -> str:
        """`name` when it is registered or a user reference; a ValueError with the choices otherwise.
        Cheap: a reference is not imported here (`check` does that)."""
        if name in self._entries or is_reference(name):
            return name
        raise ValueError(
            f"unknown {self.kind} {name!r}{suggest(name, list(self._entries))}; choose one of: "
            f"{', '.join(self._entries)}, or your own as {PLUGIN_SYNTAX}"
        )

    def get(self, name: str) -> F:
        """The callable registered as `name`, or the user's callable `name` refers to."""
        self.known(name)
        if is_reference(name):
            return load_reference(name, kind=self.kind)  # type: ignore[return-value]
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = self._entries[name] = load_reference(entry, kind=self.kind)
        return entry  # type: ignore[return-value]

    # ---- options ------------------------------------------------------------------------------------
    def signature(self, name: str) -> inspect.Signature:
        """The signature of `name`'s callable (cached: the trainer asks once per micro-batch)."""
        if name not in self._signatures:
            self._signatures[name] = _signature(self.get(name))
        return self._signatures[name]

    def options(self, name: str) -> dict[str, inspect.Parameter]:
        """The options `name` declares: its keyword-only parameters that are not context."""
        return {
            p.name: p
            for p in self.signature(name).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in self.context
        }

    def accepts(self, name: str, parameter: str) -> bool:
        """Whether `name` declares the keyword-only parameter `parameter` (an option or context)."""
        found = self.signature(name).parameters.get(parameter)
        return found is not None and found.kind is inspect.Parameter.KEYWORD_ONLY

    def check(self, name: str, options: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
        """`options` validated against the keyword-only parameters of `name` (types by their annotations,
        through pydantic); an unknown, missing or mistyped option is a ValueError saying how to fix it."""
        declared = self.options(name)
        label = f"{self.kind} {name!r}" + (f" ({where})" if where else "")
        for key in options:
            if key in self.context:
                raise ValueError(f"{label}: {key!r} is set by reasonrl, not an option; remove it")
            if key not in declared:
                raise ValueError(
                    f"{label} has no option {key!r}{suggest(key, list(declared))}; its options are "
                    f"{sorted(declared) or 'none'} (its keyword-only parameters)"
                )
        missing = [k for k, p in declared.items() if p.default is inspect.Parameter.empty and k not in options]
        if missing:
            raise ValueError(f"{label} needs option(s) {missing}; give them in its options mapping")
        return {key: _validated(label, declared[key], value) for key, value in options.items()}

    def bind(self, name: str, options: Mapping[str, Any], **context: Any) -> F:
        """`name` with its checked options and the context it declares applied, ready to call."""
        checked = self.check(name, options)
        supplied = {key: value for key, value in context.items() if self.accepts(name, key)}
        return partial(self.get(name), **supplied, **checked)  # type: ignore[return-value]


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, SyntaxError):
        return inspect.signature(fn)  # annotations that do not evaluate: names and kinds still count


def _validated(label: str, parameter: inspect.Parameter, value: Any) -> Any:
    """`value` checked (and coerced, as a config field would be) against the parameter's annotation."""
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty or isinstance(annotation, str):
        return value
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(annotation).validate_python(value, strict=True)
    except ValidationError as exc:
        message = exc.errors(include_url=False)[0]["msg"]
        raise ValueError(f"{label}: option {parameter.name!r} = {value!r} is invalid: {message}") from None
    except Exception:  # an annotation pydantic cannot build a validator for: take the value as given
        return value


# ---- user code ------------------------------------------------------------------------------------------
def canonical_reference(reference: str) -> str:
    """The reference with a file path made absolute, so processes with another working directory find it."""
    location, _, attribute = reference.rpartition(":")
    if location.endswith(".py"):
        return f"{Path(location).resolve()}:{attribute}"
    return reference


def load_reference(reference: str, *, kind: str = "plug-in") -> Callable[..., Any]:
    """The callable named by `module:name` or `file.py:name`; a clear ValueError if it cannot be had."""
    location, _, attribute = reference.rpartition(":")
    if not location or not attribute:
        raise ValueError(f"{kind} {reference!r}: write it as {PLUGIN_SYNTAX}")
    try:
        module = module_from_file(location) if location.endswith(".py") else importlib.import_module(location)
    except (ImportError, OSError, SyntaxError) as exc:
        raise ValueError(
            f"{kind} {reference!r}: cannot import {location!r} ({type(exc).__name__}: {exc}); "
            "check the spelling and that it is on the Python path (or give a file path ending in .py)"
        ) from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"{kind} {reference!r}: {location!r} has no function {attribute!r}")
    return function


def module_from_file(path: str) -> ModuleType:
    """Import a user's file once per process, under a name derived from its path."""
    resolved = Path(path).resolve()
    name = "reasonrl_user_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
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
