"""The base of every request body."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _scalars(annotation: Any) -> set[type]:
    """The plain types an annotation admits at its top level (through Optional/Annotated)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalars(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return {kind for arg in get_args(annotation) for kind in _scalars(arg)}
    return {annotation} if isinstance(annotation, type) else set()


class Input(BaseModel):
    """Request bodies reject unknown fields, so a typo is a 422 naming it, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """JSON keeps booleans and numbers apart, and so does the OpenAPI document: `0` is
        not `false` and `true` is not `1` (Pydantic's lax mode would take either)."""
        if info.field_name is None:
            return value
        kinds = _scalars(cls.model_fields[info.field_name].annotation)
        if isinstance(value, bool) and int in kinds and bool not in kinds:
            raise ValueError("expected a number, not true or false")
        if type(value) in (int, float) and bool in kinds and not kinds & {int, float}:
            raise ValueError("expected true or false, not a number")
        return value
