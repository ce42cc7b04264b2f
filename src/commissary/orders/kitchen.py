"""What the worker does with an order: the allergen check, then the kitchen."""

from __future__ import annotations

import random

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import repository as catalog_repo
from commissary.core import jobs
from commissary.models import Fulfillment, KitchenMode, OrderStatus
from commissary.orders import repository as repo
from commissary.orders.allergens import LineContents, cancellation_message, find_conflicts
from commissary.orders.state import Actor, transition

log = structlog.get_logger(__name__)


def kitchen_delay(low: float, high: float) -> float:
    """How long the simulated kitchen takes: uniform between ``low`` and ``high`` seconds."""
    return random.uniform(low, high)  # noqa: S311 - a cooking time, not a secret


async def process_order(session: AsyncSession, order_id: int) -> None:
    """``pending`` → ``in_progress``; then ``cancelled`` with a reason naming each line,
    ingredient and allergy that clash, or hand over to the kitchen. An order that is no
    longer pending was processed already: nothing happens."""
    order = await repo.lock(session, order_id)
    if order is None or order.status is not OrderStatus.PENDING:
        return
    transition(session, order, OrderStatus.IN_PROGRESS, actor=Actor.SYSTEM)
    contents = [
        LineContents(line.product_name, line.ingredients, line.allergens) for line in order.lines
    ]
    conflicts = find_conflicts(order.allergies, contents)
    if conflicts:
        transition(
            session,
            order,
            OrderStatus.CANCELLED,
            actor=Actor.SYSTEM,
            message=cancellation_message(conflicts),
            data={"conflicts": [c.__dict__ for c in conflicts]},
        )
        log.info("order_cancelled_for_allergy", order_id=order_id, conflicts=len(conflicts))
        return
    restaurant = await catalog_repo.get_restaurant(session, order.restaurant_id)
    if restaurant is not None and restaurant.kitchen_mode is KitchenMode.SIMULATED:
        settings = jobs.runtime_of(session).settings
        delay = kitchen_delay(settings.kitchen_min_seconds, settings.kitchen_max_seconds)
        jobs.enqueue(session, "orders.kitchen_complete", delay=delay, order_id=order_id)


async def complete_simulated(session: AsyncSession, order_id: int) -> None:
    """The simulated kitchen is done: a pickup or dine-in order is completed, a delivery is
    ``ready`` for its courier. An order cancelled meanwhile stays cancelled."""
    order = await repo.lock(session, order_id)
    if order is None or order.status is not OrderStatus.IN_PROGRESS:
        return
    done = OrderStatus.READY if order.fulfillment is Fulfillment.DELIVERY else OrderStatus.COMPLETED
    transition(session, order, done, actor=Actor.SYSTEM)
