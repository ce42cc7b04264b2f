"""Text rules shared by every input model."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints


def plain_text(value: str) -> str:
    """Refuse what the databases cannot store: NUL characters and lone surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def unique_casefold(values: list[str]) -> list[str]:
    """Drop repeats that differ only by case, keeping the first spelling."""
    seen: set[str] = set()
    out = []
    for value in values:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            out.append(value)
    return out


# An ingredient, allergen tag or allergy, and a list of them.
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(plain_text),
]
Tags = Annotated[list[Tag], Field(max_length=50), AfterValidator(unique_casefold)]
