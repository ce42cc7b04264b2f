"""Every query of the orders package."""

from __future__ import annotations

import datetime as dt
import functools
import typing
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    Select,
    String,
    Table,
    any_,
    bindparam,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commissary.core.db import DriverStatement
from commissary.core.ids import parse_id
from commissary.core.listing import (
    EXACT_OPS,
    ORDER_OPS,
    TEXT_OPS,
    Filter,
    ListQuery,
    ListSpec,
    bounded_int,
    fetch_page,
    parse_amount,
    parse_datetime,
)
from commissary.models import (
    AuditLog,
    Fulfillment,
    OptionGroup,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Product,
    Restaurant,
    User,
    restaurant_owner,
    restaurant_staff,
)
from commissary.users.repository import MEMBER_COLUMNS, MEMBER_QUERY, member_row

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


ORDER_EVENT_LIST = ListSpec(
    filters={
        "type": Filter(OrderEvent.type, ops=TEXT_OPS),
        "sequence": Filter(OrderEvent.sequence, bounded_int(1, 2**31 - 1), ORDER_OPS),
        "actor": Filter(OrderEvent.actor, ops=EXACT_OPS),
        "from_status": Filter(OrderEvent.from_status, OrderStatus, EXACT_OPS),
        "to_status": Filter(OrderEvent.to_status, OrderStatus, EXACT_OPS),
        "created_at": Filter(OrderEvent.created_at, parse_datetime, ORDER_OPS),
    },
    sortable={"sequence": OrderEvent.sequence, "created_at": OrderEvent.created_at},
    default_sort=("sequence",),
    search=(OrderEvent.type,),
)


def owned_restaurant_ids(user_id: int, column: Any = Order.restaurant_id) -> ColumnElement[bool]:
    """``column`` (a restaurant id) names a restaurant that ``user_id`` owns."""
    return column.in_(  # type: ignore[no-any-return]
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
        case "integrations":  # a developer: the restaurants granted to them
            return Order.restaurant_id.in_(
                select(restaurant_staff.c.restaurant_id).where(
                    restaurant_staff.c.user_id == user_id
                )
            )
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


async def events_page(
    session: AsyncSession, order_id: int, query: ListQuery
) -> tuple[list[OrderEvent], int]:
    stmt = select(OrderEvent).where(OrderEvent.order_id == order_id)
    return await fetch_page(session, stmt, query, OrderEvent.sequence)


async def events(session: AsyncSession, order_id: int) -> Sequence[OrderEvent]:
    stmt = select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.sequence)
    return (await session.scalars(stmt)).all()


async def delete_order(session: AsyncSession, order_id: int) -> None:
    await session.execute(delete(Order).where(Order.id == order_id))


async def customer_id_of(session: AsyncSession, order_id: int) -> int | None:
    return await session.scalar(select(Order.customer_id).where(Order.id == order_id))


MENU_COLUMNS = (
    Product.id,
    Product.name,
    Product.price,
    Product.currency,
    Product.ingredients,
    Product.allergens,
    Product.is_available,
    Product.restaurant_id,
    Restaurant.name.label("restaurant_name"),
    Restaurant.is_active.label("restaurant_is_active"),
    Restaurant.is_accepting_orders,
    Restaurant.timezone,
    Restaurant.opening_hours,
    exists().where(OptionGroup.product_id == Product.id).label("has_options"),
    # Whether the member placing the order is a waiter of the restaurant: checked in the same
    # read, so a waiter's order costs no extra round trip.
    exists()
    .where(
        restaurant_staff.c.restaurant_id == Product.restaurant_id,
        restaurant_staff.c.user_id == bindparam("member_id", type_=BigInteger),
    )
    .label("is_staff"),
)


def _menu_query(ids: ColumnElement[bool]) -> Select[Any]:
    return (
        select(*MENU_COLUMNS)
        .join(Restaurant, Restaurant.id == Product.restaurant_id)
        .where(ids)
        .order_by(Product.id)
    )


# Built once: SQLAlchemy reuses the compiled form of the portable one, asyncpg's statement
# cache the PostgreSQL one (an array parameter, so any number of ids is one statement).
MENU_QUERY = _menu_query(Product.id.in_(bindparam("product_ids", expanding=True)))
_PRODUCT_IDS_PG = Product.id == any_(bindparam("product_ids", type_=ARRAY(BigInteger)))
MENU_QUERY_PG = DriverStatement(_menu_query(_PRODUCT_IDS_PG))

# The caller's account and the menu rows in one statement: every menu row carries the
# account's columns as ``member_<name>``; with no product found, one row with the account's
# columns only; with no such account, no row.
_MEMBER = (
    select(*(column.label(f"member_{column.key}") for column in MEMBER_COLUMNS))
    .where(User.id == bindparam("user_id", type_=BigInteger))
    .subquery("member")
)
_MENU = _menu_query(_PRODUCT_IDS_PG).subquery("menu")
CALLER_AND_MENU_PG = DriverStatement(
    select(_MEMBER, _MENU).select_from(_MEMBER.outerjoin(_MENU, true())).order_by(_MENU.c.id)
)


async def menu_rows(
    session: AsyncSession, product_ids: Collection[int], member_id: int = 0
) -> Sequence[Row[Any]]:
    """The ordered products with their restaurant's state, in one query (placement's read),
    and whether ``member_id`` is one of the restaurant's waiters (``is_staff``).
    On PostgreSQL the rows are named tuples with the same attributes (see ``DriverStatement``)."""
    params = {"product_ids": list(product_ids), "member_id": member_id}
    if session.get_bind().dialect.name == "postgresql":
        return typing.cast(Sequence[Row[Any]], await MENU_QUERY_PG.fetch(session, params))
    rows: Sequence[Row[Any]] = (await session.execute(MENU_QUERY, params)).all()
    return rows


async def caller_and_menu(
    session: AsyncSession, user_id: int, product_ids: Collection[int]
) -> tuple[Any | None, Sequence[Row[Any]]]:
    """The caller's account (a row of ``users.repository.MEMBER_COLUMNS``, None if there is
    no such account) and ``menu_rows`` of ``product_ids`` for them: on PostgreSQL in one
    round trip, the first two reads of an order placement."""
    if session.get_bind().dialect.name != "postgresql":
        member = await member_row(session, user_id)
        if member is None or not product_ids:
            return member, []
        return member, await menu_rows(session, product_ids, user_id)
    params = {"user_id": user_id, "product_ids": list(product_ids), "member_id": user_id}
    rows = await CALLER_AND_MENU_PG.fetch(session, params)
    if not rows:
        return None, []
    first = rows[0]
    member = MEMBER_QUERY.row(*(getattr(first, f"member_{c.key}") for c in MEMBER_COLUMNS))
    menu = [row for row in rows if row.id is not None]
    return member, typing.cast(Sequence[Row[Any]], menu)


async def is_restaurant_owner(session: AsyncSession, user_id: int, restaurant_id: int) -> bool:
    stmt = select(restaurant_owner.c.user_id).where(
        restaurant_owner.c.user_id == user_id, restaurant_owner.c.restaurant_id == restaurant_id
    )
    return await session.scalar(stmt) is not None


async def staff_restaurant_ids(session: AsyncSession, user_id: int) -> Sequence[int]:
    """The restaurants ``user_id`` is a waiter of."""
    stmt = (
        select(restaurant_staff.c.restaurant_id)
        .where(restaurant_staff.c.user_id == user_id)
        .order_by(restaurant_staff.c.restaurant_id)
    )
    return (await session.scalars(stmt)).all()


async def restaurant_row(session: AsyncSession, restaurant_id: int, member_id: int) -> Any:
    """A restaurant as placement checks it when no menu line names it: its state, its
    currency (its menu's; EUR for an empty menu) and whether ``member_id`` is its waiter."""
    currency = (
        select(Product.currency)
        .where(Product.restaurant_id == Restaurant.id)
        .order_by(Product.id)
        .limit(1)
        .scalar_subquery()
    )
    is_staff = exists().where(
        restaurant_staff.c.restaurant_id == Restaurant.id,
        restaurant_staff.c.user_id == member_id,
    )
    stmt = select(
        Restaurant.id.label("restaurant_id"),
        Restaurant.name.label("restaurant_name"),
        Restaurant.is_active.label("restaurant_is_active"),
        Restaurant.is_accepting_orders,
        Restaurant.timezone,
        Restaurant.opening_hours,
        func.coalesce(currency, "EUR").label("currency"),
        is_staff.label("is_staff"),
    ).where(Restaurant.id == restaurant_id)
    return (await session.execute(stmt)).first()


ORDER_T = typing.cast(Table, Order.__table__)
LINE_T = typing.cast(Table, OrderLine.__table__)
EVENT_T = typing.cast(Table, OrderEvent.__table__)
AUDIT_T = typing.cast(Table, AuditLog.__table__)


def _binds(table: Table, names: Sequence[str], prefix: str) -> list[Any]:
    """Named parameters typed like ``table``'s columns (JSON, money, UTC datetimes)."""
    return [bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in names]


@functools.lru_cache(maxsize=64)
def _insert_statement(
    line_count: int,
    order_fields: tuple[str, ...],
    line_fields: tuple[str, ...],
    event_fields: tuple[str, ...],
    audit_fields: tuple[str, ...],
) -> DriverStatement:
    """PostgreSQL: the order, its lines, event and audit row in one statement of
    data-modifying CTEs. Built once per line count, then only its parameters change."""
    values = dict(zip(order_fields, _binds(ORDER_T, order_fields, "o_"), strict=True))
    new = insert(ORDER_T).values(values).returning(ORDER_T.c.id).cte("new_order")
    line_rows = [
        select(new.c.id, *_binds(LINE_T, line_fields, f"l{n}_")) for n in range(line_count)
    ]
    new_lines = (
        insert(LINE_T)
        .from_select(["order_id", *line_fields], union_all(*line_rows))
        .cte("new_lines")
    )
    new_event = (
        insert(EVENT_T)
        .from_select(
            ["order_id", *event_fields], select(new.c.id, *_binds(EVENT_T, event_fields, "e_"))
        )
        .cte("new_event")
    )
    new_audit = (
        insert(AUDIT_T)
        .from_select(
            ["entity_id", *audit_fields],
            select(cast(new.c.id, String), *_binds(AUDIT_T, audit_fields, "a_")),
        )
        .cte("new_audit")
    )
    return DriverStatement(select(new.c.id).add_cte(new_lines, new_event, new_audit), writes=True)


async def insert_order(
    session: AsyncSession,
    order: dict[str, Any],
    lines: list[dict[str, Any]],
    event: dict[str, Any],
    audit: dict[str, Any],
) -> int:
    """Write a new order, its lines, its ``created`` event and its audit row; return its id.

    On PostgreSQL this is one statement, so placing an order costs one round trip besides
    the transaction's own; elsewhere it is one statement per table."""
    if session.get_bind().dialect.name != "postgresql":
        return await _insert_order_stepwise(session, order, lines, event, audit)
    stmt = _insert_statement(len(lines), tuple(order), tuple(lines[0]), tuple(event), tuple(audit))
    params = {f"o_{k}": v for k, v in order.items()}
    for n, line in enumerate(lines):
        params.update({f"l{n}_{k}": v for k, v in line.items()})
    params.update({f"e_{k}": v for k, v in event.items()})
    params.update({f"a_{k}": v for k, v in audit.items()})
    (row,) = await stmt.fetch(session, params)
    return int(row.id)


async def _insert_order_stepwise(
    session: AsyncSession,
    order: dict[str, Any],
    lines: list[dict[str, Any]],
    event: dict[str, Any],
    audit: dict[str, Any],
) -> int:
    order_id: int = (
        await session.execute(insert(ORDER_T).values(order).returning(ORDER_T.c.id))
    ).scalar_one()
    await session.execute(insert(LINE_T), [{"order_id": order_id, **line} for line in lines])
    await session.execute(insert(EVENT_T).values(order_id=order_id, **event))
    await session.execute(insert(AUDIT_T).values(entity_id=str(order_id), **audit))
    return order_id


def _claim(stmt: Any, limit: int) -> Any:
    """Oldest first, under row locks that concurrent workers skip rather than wait for."""
    return (
        stmt.order_by(Order.id)
        .limit(limit)
        .options(selectinload(Order.lines))
        .with_for_update(of=Order, skip_locked=True)
        .execution_options(populate_existing=True)
    )


async def claim_pending(session: AsyncSession, limit: int) -> Sequence[Order]:
    """Up to ``limit`` pending orders for this worker to process."""
    stmt = _claim(select(Order).where(Order.status == OrderStatus.PENDING), limit)
    return (await session.scalars(stmt)).all()


async def claim_cooked(session: AsyncSession, now: dt.datetime, limit: int) -> Sequence[Order]:
    """Up to ``limit`` orders whose simulated kitchen time is over."""
    stmt = _claim(
        select(Order).where(Order.status == OrderStatus.IN_PROGRESS, Order.kitchen_due_at <= now),
        limit,
    )
    return (await session.scalars(stmt)).all()
