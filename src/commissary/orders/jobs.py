"""Worker entry points of the orders package: thin, taking ids."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.orders import kitchen


@jobs.job("orders.process")
async def process(session: AsyncSession, order_id: int) -> None:
    await kitchen.process_order(session, order_id)


@jobs.job("orders.kitchen_complete")
async def kitchen_complete(session: AsyncSession, order_id: int) -> None:
    await kitchen.complete_simulated(session, order_id)
