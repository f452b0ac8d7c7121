"""Turn pydantic's validation errors into messages that say what was wrong, where, and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from reasonrl.plugins import suggest  # re-exported: config modules take it from here


class ConfigError(ValueError):
    """A config that cannot run; the message lists every problem found, one per line."""


# Keys that moved: old dotted path -> new dotted path. An old key (or a key under an old section) in a YAML
# file or a `--set` is refused with a message naming its new place. Add a row whenever a key moves.
MOVED_KEYS: dict[str, str] = {
    "train.warmup": "train.sft",
    "algorithm.critic.warmup_steps": "algorithm.critic.critic_only_steps",
    # GRESO is a rollout feature of both pipelines now, not only of async.
    "async_training.selective_rollouts": "rollout.selective_rollouts",
    "async_training.target_zero_variance": "rollout.target_zero_variance",
}

# Keys that were removed: old dotted path -> why, and what to do instead. Add a row whenever a key goes.
REMOVED_KEYS: dict[str, str] = {
    "backend.kind": "it was validated but did nothing; Ray runs are `distributed.backend: ray` (docs/distributed.md)",
    "backend.ray_address": "it was validated but did nothing; a Ray cluster's address is `distributed.address` now",
}


def _retired(path: str) -> str | None:
    """Why `path` is no longer a key, if it (or a section above it) moved or was removed; else None."""
    for old, new in MOVED_KEYS.items():
        if path == old or path.startswith(old + "."):
            target = new + path[len(old) :]
            return f"key {path!r} was renamed to {target!r}; write {target}"
    for old, why in REMOVED_KEYS.items():
        if path == old or path.startswith(old + "."):
            return f"key {path!r} was removed: {why}"
    return None


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
        retired = _retired(path)
        if retired is not None:
            return retired
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
    # A registry's own message already lists the choices; the field's description would only repeat them.
    about = f" ({description})" if description and not _selects_a_part(root, loc) else ""
    return f"invalid value for {path!r}: {shown}: {error['msg'].removeprefix('Value error, ')}{about}"


def _selects_a_part(root: type[BaseModel], loc: Sequence[Any]) -> bool:
    parent = _model_at(root, loc[:-1])
    if parent is None or not loc or loc[-1] not in parent.model_fields:
        return False
    extra = parent.model_fields[loc[-1]].json_schema_extra
    return isinstance(extra, dict) and "registry" in extra


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
