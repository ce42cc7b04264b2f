"""Editing a pending order: its customer, or the staff who may act on it, change its items,
note, fulfillment or delivery address. New items go through placement's own checks and
pricing (menu rows, ``_check_menu``, option rules, quantity and total ceilings, the restaurant
open), and must stay in the order's restaurant.

An edit holds the order's row lock, as the worker does when it claims pending orders
(``FOR UPDATE SKIP LOCKED``; SQLite serializes writers), so the two serialize on the row:
either the worker takes the order first and the edit is refused with 409 ``order_locked``, or
the worker sees the edited order."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.errors import Conflict, field_error, reject_nulls
from commissary.core.money import money_text
from commissary.models import Fulfillment, Order, OrderLine, OrderStatus, User
from commissary.ops import audit
from commissary.orders import pricing, service
from commissary.orders import repository as repo
from commissary.orders.kitchen import PROCESS_JOB
from commissary.orders.schemas import OrderCreate, OrderEdit, OrderItemIn, OrderReplace
from commissary.orders.state import record

EDITABLE = ("items", "fulfillment", "delivery_address", "note")
NULLABLE = ("delivery_address", "note")
FIELDS = ("fulfillment", "delivery_address", "note")


async def edit(
    session: AsyncSession, user: User, order_id: int, data: OrderEdit | OrderReplace
) -> Order:
    """Change a ``pending`` order: the fields given (``OrderEdit``, a PATCH) or the whole
    editable part (``OrderReplace``, a PUT). Under the order's row lock: refuse an order that
    is no longer pending, re-price new items like a new order, replace the lines, write the
    ``edited`` event (what changed, the old and new total) and the audit row, and wake the
    order processing for after the commit. An edit that changes nothing writes nothing."""
    given = data.model_fields_set if isinstance(data, OrderEdit) else set(EDITABLE)
    changes = {name: getattr(data, name) for name in EDITABLE if name in given}
    reject_nulls(changes, NULLABLE)
    order, actor = await service._locked_for(session, user, order_id)
    if order.status is not OrderStatus.PENDING:
        raise Conflict(
            f"order {order_id} is {order.status.value}: only a pending order can be edited",
            code="order_locked",
            extra={"current_status": order.status.value},
        )
    fulfillment = changes.get("fulfillment", order.fulfillment)
    if fulfillment is Fulfillment.DELIVERY and not changes.get(
        "delivery_address", order.delivery_address
    ):
        raise field_error("delivery_address", "`delivery_address` is required for a delivery")
    changed = [name for name in FIELDS if name in changes and changes[name] != getattr(order, name)]
    old_total, old_lines = order.total, list(order.lines)
    if "items" in changes:
        lines, total, currency = await _priced(session, order, changes["items"])
        if _snapshot(lines) != _snapshot(old_lines):
            changed.append("items")
            order.lines = [OrderLine(**line.row()) for line in lines]
            order.total, order.currency = total, currency
    if not changed:
        return order
    for name in FIELDS:
        if name in changed:
            setattr(order, name, changes[name])
    event: dict[str, Any] = {
        "fields": sorted(changed),
        "old_total": money_text(old_total),
        "new_total": money_text(order.total),
    }
    if "items" in changed:
        event["old_items"] = [_summary(line) for line in old_lines]
    record(session, order, "edited", actor=actor, actor_id=user.id, data=event)
    audit.record(
        session,
        actor_id=user.id,
        action="order.edit",
        entity="order",
        entity_id=order.id,
        fields=sorted(changed),
    )
    await session.flush()
    jobs.wake(session, PROCESS_JOB)
    return order


async def _priced(
    session: AsyncSession, order: Order, items: Sequence[OrderItemIn]
) -> tuple[list[pricing.PricedLine], Decimal, str]:
    """The lines of ``items`` checked and priced by placement's code, in ``order``'s
    restaurant (``restaurant_mismatch`` otherwise); their total and currency."""
    request = OrderCreate.model_construct(items=list(items), restaurant_id=order.restaurant_id)
    rows = await repo.menu_rows(session, {item.product_id for item in items})
    menu = service._check_menu(request, items, rows)
    groups = await pricing.groups_for(session, items, rows)
    max_quantity = jobs.runtime_of(session).settings.order_max_quantity
    lines = service._priced_lines(request, rows, groups, max_quantity)
    return lines, service.order_total(session, lines, menu.currency), menu.currency


def _snapshot(lines: Sequence[OrderLine | pricing.PricedLine]) -> list[tuple[Any, ...]]:
    return [
        (line.product_id, line.product_name, line.unit_price, line.quantity, line.options)
        for line in lines
    ]


def _summary(line: OrderLine) -> dict[str, Any]:
    """A replaced line, as the ``edited`` event keeps it."""
    return {
        "product_id": line.product_id,
        "product_name": line.product_name,
        "quantity": line.quantity,
        "unit_price": money_text(line.unit_price),
        "options": [option["id"] for option in line.options],
    }
