"""Worker entry points of the notifications package: thin, taking ids. (The event stream's
hook is ``notifications.events``, which ``tasks.JOB_MODULES`` lists too.)"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.notifications import customer_mail, staff_mail


@jobs.job(staff_mail.JOB, bulk=True)
async def staff_order_mail(session: AsyncSession, order_ids: list[int], attempt: int = 0) -> None:
    """Mail the admins and each restaurant's owners about the orders it accepted."""
    await staff_mail.send_batch(session, order_ids, attempt)


@jobs.job(customer_mail.JOB, bulk=True)
async def customer_notification_mail(
    session: AsyncSession, notification_ids: list[int], attempt: int = 0
) -> None:
    """Mail customers the notifications that matter most (accepted, rejected, on its way)."""
    await customer_mail.send_batch(session, notification_ids, attempt)
