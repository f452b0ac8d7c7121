"""Typed, strict run configuration (pydantic): sections, YAML + overrides, schema and docs export."""

from reasonrl.config.data_source import DataSource, FieldMap, parse_spec
from reasonrl.config.errors import ConfigError
from reasonrl.config.loading import dump_config, load_config
from reasonrl.config.schema import RunConfig

__all__ = ["ConfigError", "DataSource", "FieldMap", "RunConfig", "dump_config", "load_config", "parse_spec"]
