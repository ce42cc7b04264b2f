"""Text rules shared by every input model."""

from __future__ import annotations

import html
from typing import Annotated

import nh3
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


def strip_html(value: str) -> str:
    """The text of ``value`` with every HTML tag removed (with the content of ``script`` and
    ``style``) and entities decoded, so it is stored as the plain text a person typed:
    ``a < b`` stays ``a < b``. Decoding is repeated until nothing changes, so an encoded tag
    (``&lt;b&gt;``) never comes back as a tag either."""
    for _ in range(8):
        text = html.unescape(nh3.clean(value, tags=set()))
        if text == value:
            return text
        value = text
    return nh3.clean(value, tags=set())  # still changing: keep the escaped form, never a tag


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
