"""Worker entry points of the webhooks package: thin, taking ids. Importing it also
registers the event stream's hook that records deliveries (``service.record_deliveries``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.webhooks import sending, service


@jobs.job(service.DELIVER_JOB)
async def deliver(session: AsyncSession, delivery_id: int, attempt: int) -> None:
    """Send one delivery (its try number ``attempt`` + 1) and record what came of it."""
    await sending.deliver(session, delivery_id, attempt)
