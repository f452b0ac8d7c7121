"""The strict base model every config section derives from.

Unknown keys are errors (ROLL silently ignores them, and a typo then trains the wrong thing for hours),
assignments are validated, and every field must carry a description so `docs/config.md` and
`reasonrl config schema` are complete.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: strict keys, validated assignment, descriptions required on every field."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: object) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        undocumented = [name for name, info in cls.model_fields.items() if not info.description]
        if undocumented:
            raise TypeError(f"{cls.__name__}: config fields without a description: {undocumented}")
