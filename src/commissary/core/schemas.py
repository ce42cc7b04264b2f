"""The base of every request body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict


class Input(BaseModel):
    """Request bodies reject unknown fields, so a typo is a 422 naming it, not a silent
    no-op; and they are strict, so ``"1"`` or ``true`` is not a quantity and ``1`` is not a
    boolean. Fields whose JSON form is a string of another type opt out with ``Lax``:
    enumerations, and money (a JSON number or a string such as ``"12.50"``)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# ``Annotated[Role, Lax]``: the enum's value as a JSON string (a body arrives as Python
# values, and strict mode would want an enum instance).
Lax = Field(strict=False)


def _drop_null(schema: JsonDict) -> None:
    options = schema.get("anyOf")
    if isinstance(options, list):
        rest = [o for o in options if o != {"type": "null"}]
        del schema["anyOf"]
        if len(rest) == 1 and isinstance(rest[0], dict):
            schema.update(rest[0])
        else:
            schema["anyOf"] = rest
    schema.pop("default", None)


# ``name: Annotated[Name | None, NotNull] = None`` in a PATCH body: the field may be left
# out, but the schema does not offer null, because the service refuses an explicit null.
NotNull = Field(json_schema_extra=_drop_null)
