"""The answer of ``GET /info``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field

from commissary.catalog.schemas import OPENING_HOURS_HELP, TimeRangeRead


class Brand(BaseModel):
    """Who runs the shop, from the ``BRAND_*`` settings."""

    name: str
    description: str
    email: str | None
    phone: str | None
    website: str | None


class Location(BaseModel):
    """An active restaurant (a shop of the chain), as a visitor needs it."""

    id: int
    name: str
    slug: str
    address: str
    phone: str
    timezone: str
    opening_hours: Annotated[dict[str, list[TimeRangeRead]], Field(description=OPENING_HOURS_HELP)]
    is_open_now: bool
    next_change_at: Annotated[
        dt.datetime | None,
        Field(
            description="When `is_open_now` flips next, in the location's time zone: the next "
            "closing while open, the next opening while closed. Null when it never changes "
            "(always open, or no hours at all)."
        ),
    ]


class ShopInfo(BaseModel):
    brand: Brand
    locations: list[Location]
