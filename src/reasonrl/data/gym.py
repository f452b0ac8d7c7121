"""Access to reasoning-gym's procedural generators: lazy import, seeds, option checking, descriptions.

Importing reasoning_gym takes about 2 s (it registers 100+ generators and their data), so nothing here
imports it until a gym task is actually requested or listed.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
from functools import cache
from types import ModuleType
from typing import Any

from reasonrl.data.errors import DataError

# Generator options that reasonrl sets itself from `DataSource.seed` / `DataSource.size`.
_MANAGED_OPTIONS = frozenset({"seed", "size"})
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


@cache
def gym() -> ModuleType:
    """The reasoning_gym module, imported on first use."""
    import reasoning_gym

    return reasoning_gym


def _registry() -> dict[str, tuple[type, type]]:
    """reasoning-gym's name -> (dataset class, config dataclass) table."""
    return gym().factory.DATASETS


def gym_task_names() -> tuple[str, ...]:
    """Names of all registered reasoning-gym generators, sorted."""
    return tuple(sorted(_registry()))


def gym_seed(seed: int, stream: str) -> int:
    """The reasoning-gym seed for `DataSource.seed` in a stream ("train" or "heldout").

    reasoning-gym makes entry i from `Random(seed + i)`, so seeds 0 and 1 give the same problems shifted by
    one. Hashing (stream, seed) into a 31-bit number puts each seed's entries far apart in that index space,
    so different seeds really give different problems; 31 bits keep `seed + i` a valid numpy seed (< 2**32),
    which some generators need.
    """
    digest = hashlib.sha256(f"reasonrl:{stream}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**31


def _config_fields(name: str) -> dict[str, dataclasses.Field[Any]]:
    _, config_cls = _registry()[name]
    return {f.name: f for f in dataclasses.fields(config_cls) if f.name not in _MANAGED_OPTIONS}


def option_defaults(name: str) -> dict[str, Any]:
    """The generator's options (without seed and size) with their default values."""
    defaults: dict[str, Any] = {}
    for option, field in _config_fields(name).items():
        if field.default is not dataclasses.MISSING:
            defaults[option] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[option] = field.default_factory()
    return defaults


def make_gym_dataset(name: str, options: dict[str, Any], seed: int, size: int, config_key: str) -> Any:
    """A reasoning-gym dataset for `name` with `options`, after checking the option names.

    reasoning-gym reports an unknown option as a bare TypeError from a dataclass and a bad value as an
    AssertionError; both become a `DataError` naming the task, the option and the config key to fix.
    """
    valid = _config_fields(name)
    for option in options:
        if option in _MANAGED_OPTIONS:
            raise DataError(
                f"task {name!r}: option {option!r} is set by reasonrl; use {config_key}.{option} instead of "
                f"{config_key}.options.{option}"
            )
        if option not in valid:
            close = difflib.get_close_matches(option, list(valid), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(
                f"task {name!r} has no option {option!r}{hint}; its options are: {', '.join(sorted(valid))}. "
                f"Fix {config_key}.options."
            )
    try:
        return gym().create_dataset(name, seed=seed, size=size, **options)
    except (AssertionError, TypeError, ValueError) as exc:
        raise DataError(
            f"task {name!r}: invalid options {options}: {exc or type(exc).__name__}. "
            f"Fix {config_key}.options (defaults: {option_defaults(name)})"
        ) from exc


def gym_description(name: str) -> str:
    """One line about a generator: the first paragraph of its docstring, else of its config's docstring."""
    dataset_cls, config_cls = _registry()[name]
    for doc in (dataset_cls.__doc__, config_cls.__doc__):
        paragraph = (doc or "").strip().split("\n\n")[0]
        # Dataclasses without a docstring get their signature as __doc__; that is no description.
        if paragraph and not paragraph.startswith(f"{config_cls.__name__}("):
            return _MARKDOWN_LINK.sub(r"\1", " ".join(paragraph.split())).rstrip(":")
    return f"reasoning-gym {name.replace('_', ' ')} task"


def gym_category(name: str) -> str:
    """The generator's family as reasoning-gym files it (arithmetic, games, logic, ...)."""
    module = _registry()[name][0].__module__.split(".")
    return module[1] if len(module) >= 3 else "other"
