"""GET /stats/overview: orders by status, orders and revenue per local day, top products and
per-restaurant figures, on both modes; cancelled orders bring no revenue; restaurateurs see
their own restaurants only."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from commissary.models import OrderStatus, Role
from tests.conftest import Backend, MakeUser
from tests.menu import make_menu
from tests.test_sales_report import day, sold

OVERVIEW = "/api/v1/stats/overview"
UTC = dt.UTC


async def test_overview_counts_days_statuses_products_and_restaurants(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    cafe = await make_menu(backend)
    bar = await make_menu(backend, slug="star-bar")
    sales = await make_user(Role.SALES)
    await sold(backend, cafe.restaurant, day("2026-12-01T09:00"), ("Flat White", "3.20", 2))
    await sold(backend, cafe.restaurant, day("2026-12-01T23:59"), ("flat white", "3.20", 1))
    await sold(
        backend,
        cafe.restaurant,
        day("2026-12-03T08:00"),
        ("Bagel", "2.50", 1),
        status=OrderStatus.PENDING,
    )
    await sold(backend, bar.restaurant, day("2026-12-03T20:00"), ("Comet Ale", "5.00", 3))
    await sold(
        backend,
        bar.restaurant,
        day("2026-12-03T21:00"),
        ("Comet Ale", "5.00", 9),
        status=OrderStatus.CANCELLED,
    )
    await sold(backend, cafe.restaurant, day("2026-12-04T00:00"), ("Outside", "9.00", 1))
    answer = await client.get(
        OVERVIEW, params={"from": "2026-12-01", "to": "2026-12-03"}, headers=sales.headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["start_date"], body["end_date"], body["timezone"]) == (
        "2026-12-01",
        "2026-12-03",
        "UTC",
    )
    assert (body["orders"], body["revenue"], body["currency"]) == (5, "27.10", "EUR")
    assert body["days"] == [
        {"date": "2026-12-01", "orders": 2, "cancelled": 0, "revenue": "9.60"},
        {"date": "2026-12-02", "orders": 0, "cancelled": 0, "revenue": "0.00"},
        {"date": "2026-12-03", "orders": 3, "cancelled": 1, "revenue": "17.50"},
    ]
    assert body["orders_by_status"] == {
        **{status.value: 0 for status in OrderStatus},  # every status, even without orders
        "pending": 1,
        "completed": 3,
        "cancelled": 1,
    }
    assert body["top_products"] == [
        {"product_name": "Comet Ale", "total_quantity": 3, "total_price": "15.00"},
        {"product_name": "Flat White", "total_quantity": 3, "total_price": "9.60"},
        {"product_name": "Bagel", "total_quantity": 1, "total_price": "2.50"},
    ]
    assert body["restaurants"] == [
        {
            "restaurant_id": bar.restaurant.id,
            "name": "Star Bar",
            "currency": "EUR",
            "orders": 2,
            "cancelled": 1,
            "revenue": "15.00",
        },
        {
            "restaurant_id": cafe.restaurant.id,
            "name": "Cosmic Cafeteria",
            "currency": "EUR",
            "orders": 3,
            "cancelled": 0,
            "revenue": "12.10",
        },
    ]


async def test_days_are_read_in_the_restaurants_time_zone(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    # Auckland is UTC+13 in December: its 1 December runs from 11:00 UTC on 30 November.
    menu = await make_menu(backend, timezone="Pacific/Auckland")
    admin = await make_user(Role.ADMIN)
    await sold(backend, menu.restaurant, day("2026-11-30T10:59"), ("Late", "1.00", 1))
    await sold(backend, menu.restaurant, day("2026-11-30T11:00"), ("Early", "2.00", 1))
    await sold(backend, menu.restaurant, day("2026-12-01T10:59"), ("Night", "4.00", 1))
    await sold(backend, menu.restaurant, day("2026-12-01T11:00"), ("Next", "8.00", 1))
    answer = await client.get(
        OVERVIEW,
        params={"from": "2026-11-30", "to": "2026-12-02", "restaurant_id": menu.restaurant.id},
        headers=admin.headers,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["timezone"] == "Pacific/Auckland"
    assert [(d["date"], d["orders"], d["revenue"]) for d in body["days"]] == [
        ("2026-11-30", 1, "1.00"),
        ("2026-12-01", 2, "6.00"),
        ("2026-12-02", 1, "8.00"),
    ]


async def test_a_restaurateur_sees_only_their_own_restaurants(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    mine = await make_menu(backend, owner_id=owner.user.id)
    theirs = await make_menu(backend, slug="elsewhere")
    at = dt.datetime.now(UTC) - dt.timedelta(hours=1)
    await sold(backend, mine.restaurant, at, ("Mine", "1.00", 1))
    await sold(backend, theirs.restaurant, at, ("Theirs", "5.00", 1))
    own = await client.get(OVERVIEW, headers=owner.headers)
    assert own.status_code == 200, own.text
    assert [p["product_name"] for p in own.json()["top_products"]] == ["Mine"]
    assert [r["restaurant_id"] for r in own.json()["restaurants"]] == [mine.restaurant.id]
    assert own.json()["revenue"] == "1.00"
    refused = await client.get(
        OVERVIEW, params={"restaurant_id": theirs.restaurant.id}, headers=owner.headers
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "not_restaurant_owner")
    admin = await make_user(Role.ADMIN)
    everything = (await client.get(OVERVIEW, headers=admin.headers)).json()
    assert everything["revenue"] == "6.00"


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.WAITER, Role.COURIER, Role.DEVELOPER])
async def test_other_roles_are_refused(
    client: httpx.AsyncClient, make_user: MakeUser, role: Role
) -> None:
    account = await make_user(role)
    answer = await client.get(OVERVIEW, headers=account.headers)
    assert answer.status_code == 403
    assert (await client.get(OVERVIEW)).status_code == 401


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"from": "2026-12-02", "to": "2026-12-01"}, "from"),
        ({"from": "2024-12-31", "to": "2026-01-01"}, "to"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "20261201"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"to": ""}, "to"),
        ({"restaurant_id": "999999"}, "restaurant_id"),
    ],
)
async def test_bad_parameters_are_a_400_naming_them(
    client: httpx.AsyncClient, make_user: MakeUser, params: dict[str, str], parameter: str
) -> None:
    admin = await make_user(Role.ADMIN)
    answer = await client.get(OVERVIEW, params=params, headers=admin.headers)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["parameter"] == parameter


async def test_a_year_of_366_days_is_one_overview(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    answer = await client.get(
        OVERVIEW, params={"from": "2024-01-01", "to": "2024-12-31"}, headers=admin.headers
    )
    assert answer.status_code == 200
    assert len(answer.json()["days"]) == 366
    assert (answer.json()["orders"], answer.json()["currency"]) == (0, None)


async def test_sales_in_two_currencies_need_one_restaurant(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    paris = await make_menu(backend)
    boston = await make_menu(backend, slug="boston")
    admin = await make_user(Role.ADMIN)
    at = dt.datetime.now(UTC) - dt.timedelta(hours=1)
    await sold(backend, paris.restaurant, at, ("Tea", "2.00", 1))
    await sold(backend, boston.restaurant, at, ("Tea", "2.50", 1), currency="USD")
    mixed = await client.get(OVERVIEW, headers=admin.headers)
    assert (mixed.status_code, mixed.json()["code"]) == (409, "mixed_currencies")
    one = await client.get(
        OVERVIEW, params={"restaurant_id": boston.restaurant.id}, headers=admin.headers
    )
    assert (one.json()["currency"], one.json()["revenue"]) == ("USD", "2.50")
