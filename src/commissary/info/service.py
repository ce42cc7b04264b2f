"""The shop's public facts. Read only; the answer depends on the clock (``is_open_now``), so
it also says until when it holds."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import hours
from commissary.config import Settings
from commissary.info import repository as repo
from commissary.info.schemas import Brand, Location, ShopInfo
from commissary.models import Restaurant


def brand(settings: Settings) -> Brand:
    return Brand(
        name=settings.brand_name,
        description=settings.brand_description,
        email=settings.brand_email,
        phone=settings.brand_phone,
        website=settings.brand_website,
    )


def location(restaurant: Restaurant, at: dt.datetime) -> Location:
    """A restaurant as a location, with its opening state at ``at``."""
    opening_hours, timezone = restaurant.opening_hours, restaurant.timezone
    return Location(
        id=restaurant.id,
        name=restaurant.name,
        slug=restaurant.slug,
        address=restaurant.address,
        phone=restaurant.phone,
        timezone=timezone,
        opening_hours=opening_hours,
        is_open_now=hours.is_open(opening_hours, timezone, at),
        next_change_at=hours.next_change(opening_hours, timezone, at),
    )


async def shop_info(
    session: AsyncSession, settings: Settings, at: dt.datetime
) -> tuple[ShopInfo, dt.datetime | None]:
    """The brand and every active location as at ``at``, and the first instant at which the
    answer stops being true (a location opens or closes); None if never."""
    locations = [location(r, at) for r in await repo.active_restaurants(session)]
    # Compared in UTC: Python compares two datetimes of one zone by their wall clocks.
    changes = [c.astimezone(dt.UTC) for loc in locations if (c := loc.next_change_at)]
    return ShopInfo(brand=brand(settings), locations=locations), min(changes, default=None)
