"""Worker entry points of the orders package: thin, taking ids or nothing."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.orders import acceptance, kitchen


@jobs.job(kitchen.PROCESS_JOB, wakeable=True)
async def process_pending(session: AsyncSession) -> None:
    """Woken after each placement (coalesced): one batch of pending orders."""
    await kitchen.process_pending(session)


@jobs.job(kitchen.COMPLETE_JOB, wakeable=True)
async def complete_cooked(session: AsyncSession) -> None:
    """Woken by a full batch of completions: the next batch of cooked orders."""
    await kitchen.complete_cooked(session)


@jobs.job("orders.sweep")
async def sweep(session: AsyncSession) -> None:
    """Periodic: pending orders whose wake was lost (Redis away), the kitchen's timer, and
    the manual kitchens' orders nobody accepted in time."""
    await kitchen.process_pending(session)
    await kitchen.complete_cooked(session)
    await acceptance.sweep(session)


@jobs.job("orders.process")
async def process(session: AsyncSession, order_id: int) -> None:
    """One order (queued by versions before batching)."""
    await kitchen.process_one(session, order_id)


@jobs.job("orders.kitchen_complete")
async def kitchen_complete(session: AsyncSession, order_id: int) -> None:
    """One kitchen completion (queued by versions before the sweep)."""
    await kitchen.complete_one(session, order_id)
