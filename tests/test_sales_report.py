"""GET /orders/report: units and money per product over whole local days, most sold first;
the same name in any case or spacing is one product; cancelled orders do not count."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import httpx
import pytest

from commissary.models import Order, OrderLine, OrderStatus, Restaurant, Role
from tests.conftest import Backend, MakeUser
from tests.menu import make_menu

REPORT = "/api/v1/orders/report"
UTC = dt.UTC


async def sold(
    backend: Backend,
    restaurant: Restaurant,
    at: dt.datetime,
    *lines: tuple[str, str, int],
    status: OrderStatus = OrderStatus.COMPLETED,
    waiter_id: int | None = None,
    currency: str = "EUR",
) -> None:
    """An order placed at ``at`` with lines (name, unit price, quantity), as stored."""
    rows = [
        OrderLine(
            product_name=name,
            unit_price=Decimal(price),
            quantity=quantity,
            line_total=Decimal(price) * quantity,
            ingredients=[],
            allergens=[],
        )
        for name, price, quantity in lines
    ]
    async with backend.runtime.sessionmaker() as session:
        session.add(
            Order(
                restaurant_id=restaurant.id,
                customer_name="Walk-in",
                waiter_id=waiter_id,
                status=status,
                total=sum((line.line_total for line in rows), start=Decimal(0)),
                currency=currency,
                version=1,
                order_time=at,
                updated_at=at,
                allergies=[],
                lines=rows,
            )
        )
        await session.commit()


def day(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value).replace(tzinfo=UTC)


async def test_report_merges_names_ranks_by_units_and_skips_cancelled_orders(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    admin = await make_user(Role.ADMIN)
    noon = day("2026-12-01T12:00")
    await sold(backend, menu.restaurant, noon, ("Flat White", "3.20", 2), ("Croissant", "1.90", 1))
    await sold(backend, menu.restaurant, noon, ("flat white ", "3.20", 1), ("Bagel", "2.50", 3))
    await sold(backend, menu.restaurant, noon, ("Flat White", "3.50", 1))
    await sold(
        backend, menu.restaurant, noon, ("Croissant", "1.90", 9), status=OrderStatus.CANCELLED
    )
    answer = await client.get(
        REPORT, params={"start_date": "2026-12-01", "end_date": "2026-12-01"}, headers=admin.headers
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["items"] == [
        {"product_name": "Flat White", "total_quantity": 4, "total_price": "13.10"},
        {"product_name": "Bagel", "total_quantity": 3, "total_price": "7.50"},
        {"product_name": "Croissant", "total_quantity": 1, "total_price": "1.90"},
    ]
    assert (report["total_quantity"], report["total_price"]) == (8, "22.50")
    assert (report["start_date"], report["end_date"], report["currency"]) == (
        "2026-12-01",
        "2026-12-01",
        "EUR",
    )


async def test_days_are_whole_days_in_the_restaurants_time_zone(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    # Auckland is UTC+13 in December: its 1 December starts at 11:00 UTC on 30 November.
    menu = await make_menu(backend, timezone="Pacific/Auckland")
    admin = await make_user(Role.ADMIN)
    await sold(backend, menu.restaurant, day("2026-11-30T10:59"), ("Late Tea", "2.00", 1))
    await sold(backend, menu.restaurant, day("2026-11-30T11:00"), ("Early Tea", "2.00", 1))
    await sold(backend, menu.restaurant, day("2026-12-01T10:59"), ("Night Tea", "2.00", 1))
    await sold(backend, menu.restaurant, day("2026-12-01T11:00"), ("Next Tea", "2.00", 1))
    answer = await client.get(
        REPORT,
        params={
            "start_date": "2026-12-01",
            "end_date": "2026-12-01",
            "restaurant_id": menu.restaurant.id,
        },
        headers=admin.headers,
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["timezone"] == "Pacific/Auckland"
    assert sorted(i["product_name"] for i in report["items"]) == ["Early Tea", "Night Tea"]


async def test_default_is_the_last_30_days(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    admin = await make_user(Role.ADMIN)
    now = dt.datetime.now(UTC)
    await sold(backend, menu.restaurant, now - dt.timedelta(days=2), ("Recent", "1.00", 1))
    await sold(backend, menu.restaurant, now - dt.timedelta(days=40), ("Old", "1.00", 1))
    report = (await client.get(REPORT, headers=admin.headers)).json()
    assert [i["product_name"] for i in report["items"]] == ["Recent"]
    today = now.date()
    assert report["end_date"] == today.isoformat()
    assert report["start_date"] == (today - dt.timedelta(days=29)).isoformat()


async def test_each_role_reads_only_its_own_sales(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    waiter = await make_user(Role.WAITER)
    mine = await make_menu(backend, owner_id=owner.user.id)
    theirs = await make_menu(backend, slug="elsewhere")
    at = dt.datetime.now(UTC) - dt.timedelta(hours=1)
    await sold(backend, mine.restaurant, at, ("Mine", "1.00", 1), waiter_id=waiter.user.id)
    await sold(backend, mine.restaurant, at, ("Colleague", "1.00", 1))
    await sold(backend, theirs.restaurant, at, ("Theirs", "1.00", 1))

    async def names(headers: dict[str, str], **params: object) -> set[str]:
        answer = await client.get(REPORT, headers=headers, params=params)
        assert answer.status_code == 200, answer.text
        return {item["product_name"] for item in answer.json()["items"]}

    assert await names((await make_user(Role.ADMIN)).headers) == {"Mine", "Colleague", "Theirs"}
    assert await names((await make_user(Role.SALES)).headers) == {"Mine", "Colleague", "Theirs"}
    assert await names(owner.headers) == {"Mine", "Colleague"}
    assert await names(waiter.headers) == {"Mine"}
    refused = await client.get(
        REPORT, params={"restaurant_id": theirs.restaurant.id}, headers=owner.headers
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "not_restaurant_owner")
    customer = await make_user()
    assert (await client.get(REPORT, headers=customer.headers)).status_code == 403
    assert (await client.get(REPORT)).status_code == 401
    unknown = await client.get(REPORT, params={"restaurant_id": 999_999}, headers=owner.headers)
    assert (unknown.status_code, unknown.json()["parameter"]) == (400, "restaurant_id")


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"start_date": "2026-12-02", "end_date": "2026-12-01"}, "start_date"),
        ({"start_date": "2024-12-31", "end_date": "2026-01-01"}, "end_date"),
        ({"start_date": "2026-13-01"}, "start_date"),
        ({"end_date": "20261201"}, "end_date"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": ""}, "end_date"),
        ({"end_date": "2026-12-01\n"}, "end_date"),
        ({"start_date": "\uff12\uff10\uff12\uff16-12-01"}, "start_date"),  # full-width digits
    ],
)
async def test_bad_dates_are_a_400_naming_the_parameter(
    client: httpx.AsyncClient, make_user: MakeUser, params: dict[str, str], parameter: str
) -> None:
    admin = await make_user(Role.ADMIN)
    answer = await client.get(REPORT, params=params, headers=admin.headers)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["parameter"] == parameter


async def test_a_year_of_366_days_is_one_report(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    answer = await client.get(
        REPORT,
        params={"start_date": "2024-01-01", "end_date": "2024-12-31"},
        headers=admin.headers,
    )
    assert answer.status_code == 200
    assert answer.json()["items"] == []
    assert answer.json()["currency"] is None


async def test_csv_has_a_header_row_and_quotes_formula_like_names(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    admin = await make_user(Role.ADMIN)
    at = dt.datetime.now(UTC) - dt.timedelta(hours=1)
    await sold(backend, menu.restaurant, at, ("Latte, large", "4.00", 2), ("=1+2", "1.00", 1))
    answer = await client.get(REPORT, headers={**admin.headers, "Accept": "text/csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows == [
        ["product_name", "total_quantity", "total_price"],
        ["Latte, large", "2", "8.00"],
        ["'=1+2", "1", "1.00"],
    ]


async def test_sales_in_two_currencies_need_one_restaurant(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    paris = await make_menu(backend)
    boston = await make_menu(backend, slug="boston")
    admin = await make_user(Role.ADMIN)
    at = dt.datetime.now(UTC) - dt.timedelta(hours=1)
    await sold(backend, paris.restaurant, at, ("Tea", "2.00", 1))
    await sold(backend, boston.restaurant, at, ("Tea", "2.50", 1), currency="USD")
    mixed = await client.get(REPORT, headers=admin.headers)
    assert (mixed.status_code, mixed.json()["code"]) == (409, "mixed_currencies")
    one = await client.get(
        REPORT, params={"restaurant_id": boston.restaurant.id}, headers=admin.headers
    )
    assert (one.json()["currency"], one.json()["total_price"]) == ("USD", "2.50")
