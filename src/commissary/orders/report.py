"""The sales report: what sold, by product, over whole days in the restaurant's time zone.

Lines with the same product name (trimmed, case-insensitive) are one product, whether they
came from the menu or were keyed in ad hoc, shown under the spelling used on most lines.
Cancelled orders do not count. One SQL aggregate: lines of the orders placed in the range,
grouped by the normalized name, ranked by units sold.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.errors import Conflict, Forbidden
from commissary.core.listing import BadListQuery
from commissary.core.money import round_money
from commissary.models import Order, OrderLine, OrderStatus, Restaurant, Role, User
from commissary.orders import repository as repo

DEFAULT_DAYS = 30
MAX_DAYS = 366
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
READERS = frozenset({Role.ADMIN, Role.SALES, Role.RESTAURATEUR, Role.WAITER})


@dataclass(frozen=True)
class ReportLine:
    product_name: str
    total_quantity: int
    total_price: Decimal


@dataclass(frozen=True)
class SalesReport:
    start_date: dt.date
    end_date: dt.date
    timezone: str
    restaurant_id: int | None
    currency: str | None
    items: list[ReportLine]

    @property
    def total_quantity(self) -> int:
        return sum(item.total_quantity for item in self.items)

    @property
    def total_price(self) -> Decimal:
        return round_money(sum((item.total_price for item in self.items), start=Decimal(0)))


def parse_date(name: str, raw: str | None) -> dt.date | None:
    """A ``YYYY-MM-DD`` query parameter; anything else is a 400 naming it."""
    if raw is None:
        return None
    try:
        if not DATE.fullmatch(raw):
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadListQuery(
            f"'{name}' must be a date such as 2026-12-24", extra={"parameter": name}
        ) from None


def date_range(
    start: dt.date | None,
    end: dt.date | None,
    today: dt.date,
    names: tuple[str, str] = ("start_date", "end_date"),
) -> tuple[dt.date, dt.date]:
    """The inclusive days asked for; by default the last 30 days up to ``today``. ``names``
    are the query parameters of the start and the end, named by the errors."""
    first, last = names
    end = end or (max(today, start) if start else today)
    start = start or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise BadListQuery(
            f"'{first}' ({start}) is after '{last}' ({end})", extra={"parameter": first}
        )
    if (end - start).days + 1 > MAX_DAYS:
        raise BadListQuery(f"a report covers at most {MAX_DAYS} days", extra={"parameter": last})
    return start, end


def day_start(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The instant a local day begins, in UTC (midnight, or the first instant after a gap)."""
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


async def scope(
    session: AsyncSession,
    user: User,
    restaurant_id: int | None,
    readers: frozenset[Role] = READERS,
) -> tuple[list[ColumnElement[bool]], str]:
    """The orders ``user`` may count, and the time zone the days are read in: the
    restaurant's, or the one all of a restaurateur's restaurants share, else UTC."""
    if user.role not in readers:
        raise Forbidden(f"this needs one of the roles: {', '.join(sorted(readers))}")
    where: list[ColumnElement[bool]] = []
    if user.role is Role.WAITER:
        where.append(Order.waiter_id == user.id)
    elif user.role is Role.RESTAURATEUR:
        where.append(repo.owned_restaurant_ids(user.id))
    timezone = "UTC"
    if restaurant_id is not None:
        found = await session.scalar(
            select(Restaurant.timezone).where(Restaurant.id == restaurant_id)
        )
        if found is None:
            raise BadListQuery(
                f"restaurant {restaurant_id} does not exist",
                code="unknown_restaurant",
                extra={"parameter": "restaurant_id"},
            )
        if user.role is Role.RESTAURATEUR and not await repo.is_restaurant_owner(
            session, user.id, restaurant_id
        ):
            raise Forbidden(f"restaurant {restaurant_id} is not yours", code="not_restaurant_owner")
        where.append(Order.restaurant_id == restaurant_id)
        timezone = found
    elif user.role is Role.RESTAURATEUR:
        zones = (
            await session.scalars(
                select(Restaurant.timezone).where(repo.owned_restaurant_ids(user.id, Restaurant.id))
            )
        ).all()
        if len(set(zones)) == 1:
            timezone = zones[0]
    return where, timezone


def aggregate(where: list[ColumnElement[bool]]) -> Select[tuple[str, int, Decimal, str]]:
    """Units and money per normalized name, under the spelling of most lines."""
    key = func.lower(func.trim(OrderLine.product_name))
    spellings = (
        select(
            key.label("key"),
            Order.currency.label("currency"),
            OrderLine.product_name.label("spelling"),
            func.count().label("lines"),
            func.sum(OrderLine.quantity).label("quantity"),
            func.sum(OrderLine.line_total).label("price"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.status != OrderStatus.CANCELLED, *where)
        .group_by(key, Order.currency, OrderLine.product_name)
        .subquery()
    )
    product = (spellings.c.key, spellings.c.currency)
    ranked = select(
        spellings.c.spelling,
        spellings.c.currency,
        func.sum(spellings.c.quantity).over(partition_by=product).label("quantity"),
        func.sum(spellings.c.price).over(partition_by=product).label("price"),
        func.row_number()
        .over(
            partition_by=product,
            order_by=(spellings.c.lines.desc(), spellings.c.quantity.desc(), spellings.c.spelling),
        )
        .label("rank"),
    ).subquery()
    return (
        select(ranked.c.spelling, ranked.c.quantity, ranked.c.price, ranked.c.currency)
        .where(ranked.c.rank == 1)
        .order_by(ranked.c.quantity.desc(), func.lower(ranked.c.spelling), ranked.c.spelling)
    )


async def sales_report(
    session: AsyncSession,
    user: User,
    start: dt.date | None,
    end: dt.date | None,
    restaurant_id: int | None,
) -> SalesReport:
    """What sold between ``start`` and ``end`` (inclusive days), most sold first."""
    where, timezone = await scope(session, user, restaurant_id)
    zone = ZoneInfo(timezone)
    start, end = date_range(start, end, dt.datetime.now(zone).date())
    where += [
        Order.order_time >= day_start(start, zone),
        Order.order_time < day_start(end + dt.timedelta(days=1), zone),
    ]
    rows = (await session.execute(aggregate(where))).all()
    currencies = sorted({row.currency for row in rows})
    if len(currencies) > 1:
        raise Conflict(
            f"these sales are in {' and '.join(currencies)}: ask for one `restaurant_id`",
            code="mixed_currencies",
        )
    items = [
        ReportLine(row.spelling, int(row.quantity), round_money(Decimal(str(row.price))))
        for row in rows
    ]
    currency = currencies[0] if currencies else None
    return SalesReport(start, end, timezone, restaurant_id, currency, items)
