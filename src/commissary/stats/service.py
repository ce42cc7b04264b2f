"""The sales overview: what the dashboard charts, over whole days.

Days are read in the restaurant's time zone when one restaurant is asked for (or when all of
a restaurateur's restaurants share one), in UTC otherwise, as the sales report does. Every
figure comes from an SQL aggregate; cancelled orders count as orders but bring no revenue.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.errors import Conflict
from commissary.core.money import round_money
from commissary.models import Order, OrderStatus, Role, User
from commissary.orders import report
from commissary.stats import repository as repo

READERS = frozenset({Role.ADMIN, Role.SALES, Role.RESTAURATEUR})
TOP_PRODUCTS = 10


@dataclass(frozen=True)
class DayFigures:
    date: dt.date
    orders: int
    cancelled: int
    revenue: Decimal


@dataclass(frozen=True)
class RestaurantFigures:
    restaurant_id: int
    name: str
    currency: str
    orders: int
    cancelled: int
    revenue: Decimal


@dataclass(frozen=True)
class Overview:
    start_date: dt.date
    end_date: dt.date
    timezone: str
    restaurant_id: int | None
    currency: str | None
    orders: int
    revenue: Decimal
    orders_by_status: dict[str, int]
    days: list[DayFigures]
    top_products: list[report.ReportLine]
    restaurants: list[RestaurantFigures]


def _money(value: object) -> Decimal:
    # SQLite sums NUMERIC columns as floats: back to exact cents, half up.
    return round_money(Decimal(str(value or 0)))


async def overview(
    session: AsyncSession,
    user: User,
    start: dt.date | None,
    end: dt.date | None,
    restaurant_id: int | None,
) -> Overview:
    """The figures of the orders placed from ``start`` to ``end`` (inclusive days) that
    ``user`` may see: admin and sales every restaurant, a restaurateur their own."""
    where, timezone = await report.scope(session, user, restaurant_id, READERS)
    zone = ZoneInfo(timezone)
    start, end = report.date_range(start, end, dt.datetime.now(zone).date(), ("from", "to"))
    where += [
        Order.order_time >= report.day_start(start, zone),
        Order.order_time < report.day_start(end + dt.timedelta(days=1), zone),
    ]
    rows = (await session.execute(repo.by_day_and_status(where, timezone))).all()
    currencies = sorted({r.currency for r in rows if r.status is not OrderStatus.CANCELLED})
    if len(currencies) > 1:
        raise Conflict(
            f"these sales are in {' and '.join(currencies)}: ask for one `restaurant_id`",
            code="mixed_currencies",
        )
    statuses: Counter[str] = Counter({status.value: 0 for status in OrderStatus})
    orders: Counter[str] = Counter()
    cancelled: Counter[str] = Counter()
    revenue: dict[str, Decimal] = {}
    for r in rows:  # one row per day, status and currency, not per order
        statuses[r.status.value] += r.orders
        orders[r.day] += r.orders
        if r.status is OrderStatus.CANCELLED:
            cancelled[r.day] += r.orders
        revenue[r.day] = revenue.get(r.day, Decimal(0)) + _money(r.revenue)
    days = []
    for offset in range((end - start).days + 1):
        day = start + dt.timedelta(days=offset)
        key = day.isoformat()
        days.append(
            DayFigures(day, orders[key], cancelled[key], revenue.get(key, round_money(Decimal(0))))
        )
    top = (await session.execute(report.aggregate(where).limit(TOP_PRODUCTS))).all()
    places = (await session.execute(repo.by_restaurant(where))).all()
    return Overview(
        start_date=start,
        end_date=end,
        timezone=timezone,
        restaurant_id=restaurant_id,
        currency=currencies[0] if currencies else None,
        orders=sum(orders.values()),
        revenue=round_money(sum((d.revenue for d in days), start=Decimal(0))),
        orders_by_status=dict(statuses),
        days=days,
        top_products=[report.ReportLine(r.spelling, int(r.quantity), _money(r.price)) for r in top],
        restaurants=[
            RestaurantFigures(
                r.restaurant_id, r.name, r.currency, r.orders, int(r.cancelled), _money(r.revenue)
            )
            for r in places
        ],
    )
