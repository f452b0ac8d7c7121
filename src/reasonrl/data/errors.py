"""The one exception a user can get from loading prompts, so callers can catch data problems specifically."""

from __future__ import annotations


class DataError(ValueError):
    """A data source that cannot be read; the message names where (file and line, or task) and the fix."""
