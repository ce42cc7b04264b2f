"""Worker entry points of the notifications package: thin, taking ids."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.notifications import staff_mail


@jobs.job(staff_mail.JOB)
async def staff_order_mail(session: AsyncSession, order_ids: list[int], attempt: int = 0) -> None:
    """Mail the admins and each restaurant's owners about the orders it accepted."""
    await staff_mail.send_batch(session, order_ids, attempt)
