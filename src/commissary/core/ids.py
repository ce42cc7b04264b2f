"""Ids: positive 64-bit integers. Bounded at the edge so the database never sees a number
it cannot store or compare (which would be a 500, not a 4xx)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field, Strict

MAX_ID = 2**63 - 1

# Strict: `true` is not the id 1.
Id = Annotated[int, Strict(), Field(ge=1, le=MAX_ID)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


def parse_id(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= MAX_ID:
        raise ValueError("expected an id between 1 and 2^63-1")
    return value
