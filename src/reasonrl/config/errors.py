"""Turn pydantic's validation errors into messages that say what was wrong, where, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """A config that cannot run; the message lists every problem found, one per line."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_at(root: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The section model reached by following `loc` from `root`, or None if it leaves the models."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        model = section_type(model.model_fields[part].annotation)
    return model


def section_type(annotation: Any) -> type[BaseModel] | None:
    candidates = getattr(annotation, "__args__", None) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _describe(root: type[BaseModel], loc: Sequence[Any], error: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in loc if not str(p).startswith("function-"))
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(root, loc[:-1])
        key = str(loc[-1])
        valid = sorted(parent.model_fields) if parent else []
        where = ".".join(str(p) for p in loc[:-1]) or "the top level"
        return f"unknown key {path!r}{suggest(key, valid)}; valid keys under {where}: {', '.join(valid)}"
    value = error.get("input")
    shown = repr(value) if not isinstance(value, dict) else "a mapping"
    if kind == "literal_error":
        allowed = error.get("ctx", {}).get("expected", "")
        hint = suggest(str(value), [a.strip(" '") for a in allowed.replace(" or ", ",").split(",")])
        return f"invalid value for {path!r}: {shown}{hint}; allowed: {allowed}"
    if kind in ("value_error", "assertion_error") and not path:
        return str(error.get("ctx", {}).get("error", error["msg"]))
    description = _field_description(root, loc)
    about = f" ({description})" if description else ""
    return f"invalid value for {path!r}: {shown}: {error['msg'].removeprefix('Value error, ')}{about}"


def _field_description(root: type[BaseModel], loc: Sequence[Any]) -> str | None:
    parent = _model_at(root, loc[:-1])
    if parent is None or not loc or loc[-1] not in parent.model_fields:
        return None
    return parent.model_fields[loc[-1]].description


def config_error(root: type[BaseModel], error: ValidationError, origin: str) -> ConfigError:
    """One `ConfigError` listing every problem pydantic found, located in `origin` (a file or 'defaults')."""
    lines = [_describe(root, e["loc"], e) for e in error.errors(include_url=False)]
    bullet = "\n  - "
    return ConfigError(f"config error in {origin}:{bullet}{bullet.join(lines)}")
