"""Every query of the orders package."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, false, select
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
from commissary.models import Fulfillment, Order, OrderEvent, OrderStatus, restaurant_owner

ORDER_LIST = ListSpec(
    filters={
        "status": Filter(Order.status, OrderStatus, EXACT_OPS),
        "restaurant_id": Filter(Order.restaurant_id, parse_id, EXACT_OPS),
        "customer_id": Filter(Order.customer_id, parse_id, EXACT_OPS),
        "waiter_id": Filter(Order.waiter_id, parse_id, EXACT_OPS),
        "fulfillment": Filter(Order.fulfillment, Fulfillment, EXACT_OPS),
        "order_time": Filter(Order.order_time, parse_datetime, ORDER_OPS),
        "completed_time": Filter(Order.completed_time, parse_datetime, ORDER_OPS),
        "total": Filter(Order.total, parse_amount, ORDER_OPS),
    },
    sortable={
        "id": Order.id,
        "order_time": Order.order_time,
        "total": Order.total,
        "status": Order.status,
    },
    default_sort=("-id",),
    search=(Order.customer_name,),
)


def owned_restaurant_ids(user_id: int) -> ColumnElement[bool]:
    return Order.restaurant_id.in_(
        select(restaurant_owner.c.restaurant_id).where(restaurant_owner.c.user_id == user_id)
    )


def visibility(scope: str, user_id: int) -> ColumnElement[bool] | None:
    """The orders a role may see: None means all of them."""
    match scope:
        case "all":
            return None
        case "customer":
            return Order.customer_id == user_id
        case "waiter":
            return Order.waiter_id == user_id
        case "restaurants":
            return owned_restaurant_ids(user_id)
    return false()


async def get(
    session: AsyncSession, order_id: int, where: ColumnElement[bool] | None
) -> Order | None:
    stmt = select(Order).where(Order.id == order_id).options(selectinload(Order.lines))
    if where is not None:
        stmt = stmt.where(where)
    return await session.scalar(stmt)


async def lock(
    session: AsyncSession, order_id: int, where: ColumnElement[bool] | None = None
) -> Order | None:
    """The order (if ``where`` lets it through), read under a row lock (``FOR UPDATE``;
    SQLite serializes writers)."""
    stmt = (
        select(Order)
        .where(Order.id == order_id, *([] if where is None else [where]))
        .options(selectinload(Order.lines))
        .with_for_update(of=Order)
        .execution_options(populate_existing=True)
    )
    return await session.scalar(stmt)


async def list_page(
    session: AsyncSession, query: ListQuery, where: ColumnElement[bool] | None
) -> tuple[list[Order], int]:
    stmt = select(Order).options(selectinload(Order.lines))
    if where is not None:
        stmt = stmt.where(where)
    return await fetch_page(session, stmt, query, Order.id.desc())


async def events(session: AsyncSession, order_id: int) -> Sequence[OrderEvent]:
    stmt = select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.sequence)
    return (await session.scalars(stmt)).all()


async def delete_order(session: AsyncSession, order_id: int) -> None:
    await session.execute(delete(Order).where(Order.id == order_id))


async def customer_id_of(session: AsyncSession, order_id: int) -> int | None:
    return await session.scalar(select(Order.customer_id).where(Order.id == order_id))
