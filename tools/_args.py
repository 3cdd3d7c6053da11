"""The base of every tool's argument schema: a ``null`` argument means "use the default"."""

from __future__ import annotations

from pydantic import BaseModel, ValidationInfo, field_validator

__all__ = ["ToolArgs"]


class ToolArgs(BaseModel):
    """Base for tool arguments: ``null`` (often sent by small models) means "use the default"."""

    @field_validator("*", mode="before")
    @classmethod
    def fill_defaults(cls, value: object, info: ValidationInfo) -> object:
        """Swap ``None`` for the field's default when it has one."""
        field = cls.model_fields[info.field_name or ""]
        return field.get_default() if value is None and not field.is_required() else value
