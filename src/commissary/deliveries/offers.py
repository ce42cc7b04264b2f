"""Delivery orders offered to couriers."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.models import Fulfillment, Order
from commissary.orders.state import Actor, record


def offer(session: AsyncSession, order: Order) -> None:
    """Make an accepted delivery order available to couriers (``delivery.offered``); any
    other order is left as it is. The caller holds the order's row lock."""
    if order.fulfillment is Fulfillment.DELIVERY:
        record(session, order, "delivery.offered", actor=Actor.SYSTEM)
