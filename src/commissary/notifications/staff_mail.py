"""The e-mail that tells a restaurant's staff about each order it accepted.

One mail per order, to the active admins and the restaurant's active owners, with the lines
and the total. Orders are mailed in batches by one job, ``notifications.staff_order_mail``,
which the kitchen enqueues (through the outbox) in the transaction that accepts them.

Sent once: the job's outbox row is deleted in the job's transaction, so a second delivery of
the same job does nothing. A mail refused by the SMTP server does not fail the whole batch:
the orders not mailed yet go into a new job, delayed with a growing backoff, in the same
transaction, so the mails already accepted are never sent again. A batch goes over one
SMTP connection. A failing SMTP server thus delays the mail and never the order, which is
already committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commissary.core import jobs
from commissary.core.mail import Mail
from commissary.core.money import money_text
from commissary.models import Order, OrderStatus, Restaurant, Role, User, restaurant_owner

log = structlog.get_logger(__name__)

JOB = "notifications.staff_order_mail"
# Seconds before each new try of the mails an SMTP server refused; the last one repeats.
BACKOFF = (30, 120, 600, 1800, 3600)
MAX_ATTEMPTS = 12  # about half a day of tries; later, the mail would no longer be news


def mail_later(session: AsyncSession, order_ids: Sequence[int]) -> None:
    """Once this transaction commits, mail the staff about ``order_ids`` (a job)."""
    if order_ids and jobs.runtime_of(session).settings.order_mail_staff:
        jobs.enqueue(session, JOB, order_ids=list(order_ids))


async def _recipients(session: AsyncSession, restaurant_ids: set[int]) -> dict[int, list[str]]:
    """Per restaurant: the e-mail addresses of its active owners and of every active admin."""
    admins = (
        await session.scalars(
            select(User.email).where(User.role == Role.ADMIN, User.is_active.is_(True))
        )
    ).all()
    owners = await session.execute(
        select(restaurant_owner.c.restaurant_id, User.email)
        .join(User, User.id == restaurant_owner.c.user_id)
        .where(restaurant_owner.c.restaurant_id.in_(restaurant_ids), User.is_active.is_(True))
    )
    by_restaurant: dict[int, list[str]] = {rid: list(admins) for rid in restaurant_ids}
    for restaurant_id, email in owners:
        if email not in by_restaurant[restaurant_id]:
            by_restaurant[restaurant_id].append(email)
    return by_restaurant


def _chosen(options: Sequence[dict[str, Any]]) -> str:
    """The drink options of a line, as ``(Oat milk, Large)``."""
    return f" ({', '.join(str(o['name']) for o in options)})" if options else ""


def compose(order: Order, restaurant_name: str, to: Sequence[str]) -> Mail:
    """The mail about one order: who it is for, how it is fulfilled, its lines and total."""
    total = f"{money_text(order.total)} {order.currency}"
    lines = "\n".join(
        f"  {line.quantity} x {line.product_name}{_chosen(line.options)}"
        f" @ {money_text(line.unit_price)} = {money_text(line.line_total)}"
        for line in order.lines
    )
    about = f"order #{order.id} for {order.customer_name}"
    about += f" ({order.fulfillment.value.replace('_', ' ')})"
    if order.status is OrderStatus.AWAITING_ACCEPTANCE:
        headline = f"{restaurant_name} received {about}: accept or reject it."
    else:
        headline = f"{restaurant_name} accepted {about}."
    parts = [
        headline,
        "",
        lines,
        f"  total: {total}",
    ]
    if order.delivery_address:
        parts += ["", f"Deliver to: {order.delivery_address}"]
    if order.note:
        parts += ["", f"Note: {order.note}"]
    # A header never carries a line break, whatever the names hold.
    subject = " ".join(f"New order #{order.id} at {restaurant_name}: {total}".split())
    return Mail(to=", ".join(to), subject=subject, text="\n".join(parts) + "\n")


async def send_batch(session: AsyncSession, order_ids: Sequence[int], attempt: int = 0) -> None:
    """Mail the staff about each order of ``order_ids`` still there; see the module's
    docstring for what happens when the SMTP server refuses one."""
    runtime = jobs.runtime_of(session)
    orders = (
        await session.scalars(
            select(Order)
            .where(Order.id.in_(order_ids))
            .options(selectinload(Order.lines))
            .order_by(Order.id)
        )
    ).all()
    if not orders:
        return
    restaurant_ids = {order.restaurant_id for order in orders}
    rows = await session.execute(
        select(Restaurant.id, Restaurant.name).where(Restaurant.id.in_(restaurant_ids))
    )
    names = {row.id: row.name for row in rows}
    recipients = await _recipients(session, restaurant_ids)
    sent = 0  # orders done: mailed, or with nobody to mail
    try:
        async with runtime.mailer.connection() as send:
            for order in orders:
                to = recipients[order.restaurant_id]
                if to:
                    await send(compose(order, names[order.restaurant_id], to))
                sent += 1
    except Exception as exc:  # any SMTP or network failure: try the rest later
        _retry_later(session, [o.id for o in orders[sent:]], attempt, exc)


def _retry_later(session: AsyncSession, order_ids: list[int], attempt: int, exc: Exception) -> None:
    if attempt + 1 >= MAX_ATTEMPTS:
        log.error("staff_mail_abandoned", order_ids=order_ids, attempts=attempt + 1, error=str(exc))
        return
    delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
    log.warning("staff_mail_deferred", order_ids=order_ids, retry_in=delay, error=str(exc))
    jobs.enqueue(session, JOB, delay=delay, order_ids=order_ids, attempt=attempt + 1)
