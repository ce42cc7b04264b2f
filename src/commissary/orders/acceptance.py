"""A manual kitchen's restaurant accepts or rejects each new order, and the sweep that
chases the orders nobody answered.

The worker's allergen check leaves a manual kitchen's order ``awaiting_acceptance``, stamped
with ``awaiting_since_at``. The restaurant accepts it (``in_progress``, with the time it
promises) or rejects it with a reason (``cancelled``). The periodic order sweep raises one
``acceptance.overdue`` event for an order that waited longer than ``ACCEPT_TIMEOUT`` and
cancels it once it waited ``ACCEPT_CANCEL_AFTER`` more. Both steps claim their orders under
row locks that a concurrent sweep skips, and re-check what they expect, so a sweep that runs
twice changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.db import utcnow
from commissary.core.errors import Conflict
from commissary.deliveries import offers
from commissary.models import Order, OrderStatus
from commissary.ops import audit
from commissary.orders.state import Actor, record, transition

log = structlog.get_logger(__name__)

AWAITING = OrderStatus.AWAITING_ACCEPTANCE


def _expect_awaiting(order: Order) -> None:
    if order.status is not AWAITING:
        raise Conflict(
            f"order {order.id} is {order.status.value}, not awaiting acceptance",
            code="order_not_awaiting_acceptance",
            extra={"current_status": order.status.value},
        )


def accept_locked(
    session: AsyncSession, order: Order, actor_id: int, prep_minutes: int | None
) -> None:
    """The restaurant accepts ``order`` (locked by the caller): ``in_progress``, with the
    time it will be ready when ``prep_minutes`` is given; a delivery is offered to couriers."""
    _expect_awaiting(order)
    now = utcnow()
    ready_by = None if prep_minutes is None else now + dt.timedelta(minutes=prep_minutes)
    transition(
        session,
        order,
        OrderStatus.IN_PROGRESS,
        actor=Actor.STAFF,
        actor_id=actor_id,
        type_="accepted",
        data={
            "prep_minutes": prep_minutes,
            "ready_by": None if ready_by is None else ready_by.isoformat(),
        },
    )
    order.accepted_at = now
    order.ready_by = ready_by
    offers.offer(session, order)
    audit.record(
        session, actor_id=actor_id, action="order.accept", entity="order", entity_id=order.id
    )


def reject_locked(session: AsyncSession, order: Order, actor_id: int, reason: str) -> None:
    """The restaurant refuses ``order`` (locked by the caller): ``cancelled``, and the
    customer reads ``reason`` as the order's message."""
    _expect_awaiting(order)
    transition(
        session,
        order,
        OrderStatus.CANCELLED,
        actor=Actor.STAFF,
        actor_id=actor_id,
        message=reason,
        type_="rejected",
        data={"reason": reason},
    )
    audit.record(
        session, actor_id=actor_id, action="order.reject", entity="order", entity_id=order.id
    )


async def _claim_awaiting(
    session: AsyncSession, since_before: dt.datetime, limit: int, *, unalerted: bool
) -> Sequence[Order]:
    """Up to ``limit`` orders awaiting acceptance since ``since_before`` or earlier, oldest
    first, under row locks that a concurrent sweep skips (read through the index on
    ``status, awaiting_since_at``). What this transaction changed is flushed first: the
    fresh read (``populate_existing``) would otherwise overwrite it."""
    await session.flush()
    stmt = select(Order).where(Order.status == AWAITING, Order.awaiting_since_at <= since_before)
    if unalerted:
        stmt = stmt.where(Order.acceptance_overdue_at.is_(None))
    stmt = (
        stmt.order_by(Order.awaiting_since_at, Order.id)
        .limit(limit)
        .with_for_update(of=Order, skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).all()


def _minutes(seconds: int) -> str:
    if seconds % 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


async def raise_overdue(session: AsyncSession, now: dt.datetime) -> int:
    """One ``acceptance.overdue`` event for each order (of a batch) that has waited longer
    than ``ACCEPT_TIMEOUT``; an order gets it once (``acceptance_overdue_at``)."""
    settings = jobs.runtime_of(session).settings
    cutoff = now - dt.timedelta(seconds=settings.accept_timeout)
    orders = await _claim_awaiting(session, cutoff, settings.order_batch_size, unalerted=True)
    for order in orders:
        assert order.awaiting_since_at is not None
        waited = int((now - order.awaiting_since_at).total_seconds())
        record(
            session,
            order,
            "acceptance.overdue",
            actor=Actor.SYSTEM,
            data={"waiting_seconds": waited, "accept_timeout": settings.accept_timeout},
        )
        order.acceptance_overdue_at = now
    if orders:
        log.warning("orders_awaiting_acceptance_overdue", order_ids=[o.id for o in orders])
    return len(orders)


async def cancel_unaccepted(session: AsyncSession, now: dt.datetime) -> int:
    """Cancel each order (of a batch) still not accepted ``ACCEPT_CANCEL_AFTER`` seconds
    after it became overdue, with a message saying why."""
    settings = jobs.runtime_of(session).settings
    waited = settings.accept_timeout + settings.accept_cancel_after
    cutoff = now - dt.timedelta(seconds=waited)
    orders = await _claim_awaiting(session, cutoff, settings.order_batch_size, unalerted=False)
    reason = f"Cancelled: the restaurant did not accept the order within {_minutes(waited)}."
    for order in orders:
        transition(
            session,
            order,
            OrderStatus.CANCELLED,
            actor=Actor.SYSTEM,
            message=reason,
            data={"reason": reason},
        )
    if orders:
        log.info("orders_cancelled_unaccepted", order_ids=[o.id for o in orders])
    return len(orders)


async def sweep(session: AsyncSession) -> None:
    """The sweep's part for acceptance: alerts first, so an order cancelled in the same run
    (the sweep was away) still has its alert in its history."""
    now = utcnow()
    await raise_overdue(session, now)
    await cancel_unaccepted(session, now)
