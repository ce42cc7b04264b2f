"""Every query of the info package."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.models import Restaurant


async def active_restaurants(session: AsyncSession) -> list[Restaurant]:
    stmt = select(Restaurant).where(Restaurant.is_active).order_by(Restaurant.name, Restaurant.id)
    return list((await session.scalars(stmt)).all())
