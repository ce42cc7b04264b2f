"""What the workers do with orders, in batches: the allergen check, then the kitchen.

Pending orders are their own queue: a worker claims a batch of them under row locks that
other workers skip (``FOR UPDATE SKIP LOCKED``), checks each one and commits the batch. The
simulated kitchen stores when each order will be done (``kitchen_due_at``); the periodic sweep
completes the orders whose time has come. Both steps re-check the status they expect, so a
batch that runs twice (a retried job, a sweep racing a wake) changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.config import Settings
from commissary.core import jobs
from commissary.core.db import utcnow
from commissary.deliveries import offers
from commissary.models import Fulfillment, KitchenMode, Order, OrderStatus, Restaurant
from commissary.notifications import staff_mail
from commissary.orders import repository as repo
from commissary.orders.allergens import LineContents, cancellation_message, find_conflicts
from commissary.orders.state import Actor, transition

log = structlog.get_logger(__name__)

PROCESS_JOB = "orders.process_pending"
COMPLETE_JOB = "orders.complete_cooked"


def kitchen_delay(low: float, high: float) -> float:
    """How long the simulated kitchen takes: uniform between ``low`` and ``high`` seconds."""
    return random.uniform(low, high)  # noqa: S311 - a cooking time, not a secret


async def _kitchen_modes(session: AsyncSession, orders: Sequence[Order]) -> dict[int, KitchenMode]:
    ids = {order.restaurant_id for order in orders}
    rows = await session.execute(
        select(Restaurant.id, Restaurant.kitchen_mode).where(Restaurant.id.in_(ids))
    )
    return {row.id: row.kitchen_mode for row in rows}


def _check(session: AsyncSession, order: Order, mode: KitchenMode | None, s: Settings) -> None:
    """A simulated kitchen accepts on its own: ``pending`` → ``in_progress``, then
    ``cancelled`` with a reason naming each line, ingredient and allergy that clash, or into
    the kitchen (and, for a delivery, offered to couriers). A manual kitchen's order goes to
    ``awaiting_acceptance`` for the restaurant to accept, or straight to ``cancelled``."""
    contents = [
        LineContents.of(line.product_name, line.ingredients, line.allergens, line.options)
        for line in order.lines
    ]
    conflicts = find_conflicts(order.allergies, contents)
    manual = mode is KitchenMode.MANUAL
    if not (manual and conflicts):
        target = OrderStatus.AWAITING_ACCEPTANCE if manual else OrderStatus.IN_PROGRESS
        transition(session, order, target, actor=Actor.SYSTEM)
    if conflicts:
        transition(
            session,
            order,
            OrderStatus.CANCELLED,
            actor=Actor.SYSTEM,
            message=cancellation_message(conflicts),
            data={"conflicts": [c.__dict__ for c in conflicts]},
        )
        log.info("order_cancelled_for_allergy", order_id=order.id, conflicts=len(conflicts))
        return
    now = utcnow()
    if manual:
        order.awaiting_since_at = now
        return
    order.accepted_at = now
    if mode is KitchenMode.SIMULATED:
        delay = kitchen_delay(s.kitchen_min_seconds, s.kitchen_max_seconds)
        order.kitchen_due_at = now + dt.timedelta(seconds=delay)
    offers.offer(session, order)


async def process_orders(session: AsyncSession, orders: Sequence[Order]) -> None:
    """Check orders already locked by the caller; those no longer pending are skipped."""
    orders = [order for order in orders if order.status is OrderStatus.PENDING]
    if not orders:
        return
    modes = await _kitchen_modes(session, orders)
    settings = jobs.runtime_of(session).settings
    for order in orders:
        _check(session, order, modes.get(order.restaurant_id), settings)
    # One job mails the staff about every order of the batch that passed the check.
    staff_mail.mail_later(
        session, [order.id for order in orders if order.status is not OrderStatus.CANCELLED]
    )


async def process_pending(session: AsyncSession) -> int:
    """Process one batch of pending orders; a full batch wakes the job again after commit,
    so a backlog drains batch after batch (and across workers)."""
    limit = jobs.runtime_of(session).settings.order_batch_size
    orders = await repo.claim_pending(session, limit)
    await process_orders(session, orders)
    if len(orders) == limit:
        jobs.wake(session, PROCESS_JOB)
    return len(orders)


def _finish(session: AsyncSession, order: Order) -> None:
    """The simulated kitchen is done: a pickup or dine-in order is completed, a delivery is
    ``ready`` for its courier."""
    done = OrderStatus.READY if order.fulfillment is Fulfillment.DELIVERY else OrderStatus.COMPLETED
    transition(session, order, done, actor=Actor.SYSTEM)


async def complete_cooked(session: AsyncSession) -> int:
    """Finish one batch of orders whose kitchen time is over; a full batch wakes the job
    again after commit, so completions keep up with any rate of placement rather than one
    batch per sweep. An order cancelled meanwhile is no longer ``in_progress`` and is not
    claimed."""
    limit = jobs.runtime_of(session).settings.order_batch_size
    orders = await repo.claim_cooked(session, utcnow(), limit)
    for order in orders:
        _finish(session, order)
    if len(orders) == limit:
        jobs.wake(session, COMPLETE_JOB)
    return len(orders)


async def process_one(session: AsyncSession, order_id: int) -> None:
    """One order by id (jobs queued by earlier versions, and tests of a single order)."""
    order = await repo.lock(session, order_id)
    if order is not None:
        await process_orders(session, [order])


async def complete_one(session: AsyncSession, order_id: int) -> None:
    order = await repo.lock(session, order_id)
    if order is not None and order.status is OrderStatus.IN_PROGRESS:
        _finish(session, order)
