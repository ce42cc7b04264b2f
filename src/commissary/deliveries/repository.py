"""Every query of the deliveries package."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commissary.core.ids import parse_id
from commissary.core.listing import (
    EXACT_OPS,
    ORDER_OPS,
    Filter,
    ListQuery,
    ListSpec,
    fetch_page,
    parse_amount,
    parse_datetime,
)
from commissary.models import DeliveryRefusal, Fulfillment, Order, OrderStatus, Restaurant

# A courier may take an order from the restaurant's accept until it leaves the restaurant.
OFFERABLE = (OrderStatus.IN_PROGRESS, OrderStatus.READY)

AVAILABLE_LIST = ListSpec(
    filters={
        "restaurant_id": Filter(Order.restaurant_id, parse_id, EXACT_OPS),
        "status": Filter(Order.status, OrderStatus, EXACT_OPS),
        "total": Filter(Order.total, parse_amount, ORDER_OPS),
        "offered_at": Filter(Order.offered_at, parse_datetime, ORDER_OPS),
    },
    sortable={"order_id": Order.id, "offered_at": Order.offered_at, "total": Order.total},
    default_sort=("offered_at",),
    search=(Order.delivery_address,),
)

DELIVERY_LIST = ListSpec(
    filters={
        "restaurant_id": Filter(Order.restaurant_id, parse_id, EXACT_OPS),
        "status": Filter(Order.status, OrderStatus, EXACT_OPS),
        "courier_id": Filter(Order.courier_id, parse_id, EXACT_OPS),
        "total": Filter(Order.total, parse_amount, ORDER_OPS),
        "updated_at": Filter(Order.updated_at, parse_datetime, ORDER_OPS),
    },
    sortable={"order_id": Order.id, "updated_at": Order.updated_at, "total": Order.total},
    default_sort=("-order_id",),
    search=(Order.delivery_address,),
)


def refused_by(courier_id: int) -> ColumnElement[bool]:
    return exists().where(
        DeliveryRefusal.order_id == Order.id, DeliveryRefusal.courier_id == courier_id
    )


async def available_page(
    session: AsyncSession, query: ListQuery, courier_id: int | None
) -> tuple[list[Order], int]:
    """Delivery orders on offer: nobody took them, and ``courier_id`` (None: an admin
    looking) has not refused them."""
    stmt = (
        select(Order)
        .where(
            Order.offered_at.is_not(None),
            Order.courier_id.is_(None),
            Order.fulfillment == Fulfillment.DELIVERY,
            Order.status.in_(OFFERABLE),
        )
        .options(selectinload(Order.lines))
    )
    if courier_id is not None:
        stmt = stmt.where(~refused_by(courier_id))
    return await fetch_page(session, stmt, query, Order.id)


async def deliveries_page(
    session: AsyncSession, query: ListQuery, courier_id: int | None
) -> tuple[list[Order], int]:
    """The deliveries ``courier_id`` took (None: every taken delivery, for admins)."""
    where = Order.courier_id.is_not(None) if courier_id is None else Order.courier_id == courier_id
    stmt = select(Order).where(where).options(selectinload(Order.lines))
    return await fetch_page(session, stmt, query, Order.id.desc())


async def restaurants(session: AsyncSession, ids: Collection[int]) -> dict[int, Restaurant]:
    if not ids:
        return {}
    rows = await session.scalars(select(Restaurant).where(Restaurant.id.in_(set(ids))))
    return {restaurant.id: restaurant for restaurant in rows}


async def has_refused(session: AsyncSession, order_id: int, courier_id: int) -> bool:
    stmt = select(DeliveryRefusal.order_id).where(
        DeliveryRefusal.order_id == order_id, DeliveryRefusal.courier_id == courier_id
    )
    return await session.scalar(stmt) is not None


def add_refusal(session: AsyncSession, order_id: int, courier_id: int) -> None:
    session.add(DeliveryRefusal(order_id=order_id, courier_id=courier_id))
