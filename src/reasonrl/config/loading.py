"""Load a run config from YAML plus `--set dotted.key=value` overrides, strictly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from reasonrl.config.errors import ConfigError, config_error
from reasonrl.config.schema import RunConfig


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=c` -> (['a', 'b'], c) with c read as a YAML scalar or flow collection (so `3` is an int)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form dotted.key=value (e.g. rollout.group_size=4)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({exc.problem})") from exc
    return key.strip().split("."), value


def apply_override(tree: dict[str, Any], path: list[str], value: Any) -> None:
    """Set `path` inside `tree`, creating mappings on the way; refuses to descend into a non-mapping."""
    node = tree
    for depth, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(path[: depth + 1])
            raise ConfigError(f"override {'.'.join(path)}: {where!r} holds a value, not a section")
        node = child
    node[path[-1]] = value


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass the path of a YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of sections, not {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """The validated run config: defaults, then the YAML file, then each override in order."""
    tree = read_yaml(Path(path)) if path is not None else {}
    for text in overrides:
        apply_override(tree, *parse_override(text))
    origin = str(path) if path is not None else "the defaults"
    if overrides:
        origin += " with --set " + " ".join(overrides)
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        raise config_error(RunConfig, exc, origin) from None


def dump_config(config: RunConfig) -> str:
    """The fully resolved config as YAML, in field order, loadable again by `load_config`."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
