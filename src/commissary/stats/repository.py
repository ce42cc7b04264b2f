"""The overview's aggregates: each one SQL statement grouped in the database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String

from commissary.models import Order, OrderStatus, Restaurant


class local_date(FunctionElement[str]):  # noqa: N801 - an SQL function
    """``local_date(at, zone)``: the ``YYYY-MM-DD`` day a stored UTC instant falls on in the
    IANA time zone ``zone``. PostgreSQL converts with its own time zone database; SQLite
    calls ``commissary_local_date``, registered on every connection (``core.db``)."""

    type = String()
    inherit_cache = True
    name = "local_date"


@compiles(local_date, "postgresql")
def _local_date_pg(element: local_date, compiler: Any, **kw: Any) -> str:
    at, zone = element.clauses
    return (
        f"to_char(timezone({compiler.process(zone, **kw)}, {compiler.process(at, **kw)}), "
        "'YYYY-MM-DD')"
    )


@compiles(local_date, "sqlite")
def _local_date_sqlite(element: local_date, compiler: Any, **kw: Any) -> str:
    return f"commissary_local_date({compiler.process(element.clauses, **kw)})"


def _revenue() -> ColumnElement[Decimal]:
    """An order's total unless it was cancelled."""
    return func.sum(case((Order.status != OrderStatus.CANCELLED, Order.total), else_=0))


def by_day_and_status(where: list[ColumnElement[bool]], timezone: str) -> Select[*tuple[Any, ...]]:
    """Orders and revenue per local day, status and currency."""
    day = local_date(Order.order_time, timezone).label("day")
    return (
        select(
            day,
            Order.status,
            Order.currency,
            func.count().label("orders"),
            _revenue().label("revenue"),
        )
        .where(*where)
        .group_by(day, Order.status, Order.currency)
    )


def by_restaurant(
    where: list[ColumnElement[bool]],
) -> Select[*tuple[Any, ...]]:
    """Orders, cancellations and revenue per restaurant and currency, most revenue first."""
    revenue = _revenue().label("revenue")
    cancelled = func.sum(case((Order.status == OrderStatus.CANCELLED, 1), else_=0))
    return (
        select(
            Order.restaurant_id,
            Restaurant.name,
            Order.currency,
            func.count().label("orders"),
            cancelled.label("cancelled"),
            revenue,
        )
        .join(Restaurant, Restaurant.id == Order.restaurant_id)
        .where(*where)
        .group_by(Order.restaurant_id, Restaurant.name, Order.currency)
        .order_by(revenue.desc(), Order.restaurant_id)
    )
