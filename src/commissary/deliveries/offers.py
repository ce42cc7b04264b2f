"""Offering delivery orders to couriers, and the code that proves the handover.

An order is offered once the restaurant has accepted it (the restaurant's accept in
``manual`` kitchens, the worker's check in ``simulated`` ones). The handover code is drawn
then, with ``secrets``: the customer needs it only once a courier is on the way, and an order
that never goes out never gets one.
"""

from __future__ import annotations

import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.db import utcnow
from commissary.events.sequencer import OFFER_TYPE
from commissary.models import Fulfillment, Order
from commissary.orders.state import Actor, record

HANDOVER_CODE_DIGITS = 6
QR_PREFIX = "commissary:handover"


def new_handover_code() -> str:
    """Six random digits, from the operating system's secure source."""
    return f"{secrets.randbelow(10**HANDOVER_CODE_DIGITS):0{HANDOVER_CODE_DIGITS}d}"


def handover_qr(order_id: int, code: str) -> str:
    """The text a QR code on the customer's screen carries, for the courier's scanner."""
    return f"{QR_PREFIX}:{order_id}:{code}"


def offer(session: AsyncSession, order: Order) -> None:
    """Make a delivery order available to couriers: a ``delivery.offered`` event, and a
    handover code if it has none yet (an order offered again after a courier gave it back
    keeps its code). Does nothing for pickup and dine-in orders, or an order a courier holds.
    The caller holds the order's row lock."""
    if order.fulfillment is not Fulfillment.DELIVERY or order.courier_id is not None:
        return
    if order.handover_code is None:
        order.handover_code = new_handover_code()
    order.offered_at = utcnow()
    record(session, order, OFFER_TYPE, actor=Actor.SYSTEM)
