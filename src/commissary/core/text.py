"""Text rules shared by every input model."""

from __future__ import annotations

import html
from typing import Annotated

import nh3
from pydantic import AfterValidator, Field, StringConstraints

# Rounds of "strip tags, decode entities" before giving up on text that keeps producing
# markup (``&amp;lt;b&amp;gt;`` decodes to ``&lt;b&gt;``, then to ``<b>``).
_STRIP_ROUNDS = 4


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
    """``value`` as plain text: HTML tags and comments dropped (the content of ``<script>`` and
    ``<style>`` with them), the text of other elements kept, and entities decoded.

    The result holds no entities: ``Fish & Chips`` is stored as it was typed, never as
    ``Fish &amp; Chips``, so an answer is not escaped twice; whoever renders it as HTML
    escapes it then. Decoding cannot smuggle markup back in, as text that decodes to a tag
    goes round again until nothing changes."""
    for _ in range(_STRIP_ROUNDS):
        if "<" not in value and "&" not in value:
            return value  # nothing that HTML could read as markup or an entity
        cleaned = html.unescape(nh3.clean(value, tags=set()))
        if cleaned == value:
            return value
        value = cleaned
    return value.replace("<", "").replace("&", "")


def free_text(value: str) -> str:
    """A name, description, note or message: storable (:func:`plain_text`), without HTML."""
    text = strip_html(plain_text(value))
    if value.strip() and not text.strip():
        raise ValueError("must contain text, not only HTML markup")
    return text


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
    AfterValidator(free_text),
]
Tags = Annotated[list[Tag], Field(max_length=50), AfterValidator(unique_casefold)]
