"""Waiters key in orders for walk-ins, with menu lines and ad-hoc lines priced by staff; they
serve in their restaurants (``restaurant_ids``), which admins and the restaurants' owners set."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import event

from commissary.models import Role
from tests.conftest import PASSWORD, Backend, MakeUser
from tests.menu import Menu, add_waiter, make_menu

API = "/api/v1"
ORDERS = f"{API}/orders"
USERS = f"{API}/users"


def ad_hoc(name: str, price: str, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    return {"product_name": name, "unit_price": price, "quantity": quantity, **extra}


def walk_in(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"customer_name": "Kraglin", "items": list(items), **extra}


async def waiter_of(make_user: MakeUser, *menus: Menu) -> Any:
    return await make_user(Role.WAITER, restaurant_ids=[m.restaurant.id for m in menus])


def lines(order: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (i["product_id"], i["product_name"], i["unit_price"], i["quantity"], i["line_total"])
        for i in order["items"]
    ]


async def test_waiter_order_with_menu_and_ad_hoc_lines_is_priced_by_the_server(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    waiter = await waiter_of(make_user, menu)
    placed = await client.post(
        ORDERS,
        json=walk_in(
            {"product_id": menu.soup.id, "quantity": 2},
            ad_hoc("Espresso", "2.10", 3),
            ad_hoc("  espresso ", "2.10", 1),  # the same product: merged, first spelling kept
            ad_hoc("Tap water", "0.05", 1),
        ),
        headers=waiter.headers,
    )
    assert placed.status_code == 202, placed.text
    order = placed.json()
    assert lines(order) == [
        (menu.soup.id, "Solar Soup", "7.50", 2, "15.00"),
        (None, "Espresso", "2.10", 4, "8.40"),
        (None, "Tap water", "0.05", 1, "0.05"),
    ]
    assert (order["total"], order["currency"]) == ("23.45", "EUR")
    assert (order["waiter_id"], order["customer_name"]) == (waiter.user.id, "Kraglin")
    assert order["restaurant_id"] == menu.restaurant.id
    await backend.settle()
    done = (await client.get(f"{ORDERS}/{order['id']}", headers=waiter.headers)).json()
    assert done["status"] == "completed"
    assert lines(done) == lines(order)


async def test_client_totals_are_refused_as_unknown_fields(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    waiter = await waiter_of(make_user, menu)
    for body in (
        walk_in(ad_hoc("Espresso", "2.10", line_total="0.01")),
        walk_in(ad_hoc("Espresso", "2.10"), total="0.01"),
        walk_in({"product_id": menu.soup.id, "quantity": 1, "line_total": "0.01"}),
    ):
        answer = await client.post(ORDERS, json=body, headers=waiter.headers)
        assert answer.status_code == 422, body
        (error,) = answer.json()["errors"]
        assert error["field"].endswith("total") and error["type"] == "extra_forbidden"


async def test_one_name_at_two_prices_is_refused_naming_it(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    waiter = await waiter_of(make_user, menu)
    two_prices = walk_in(ad_hoc("Espresso", "2.10"), ad_hoc("ESPRESSO", "2.50"))
    answer = await client.post(ORDERS, json=two_prices, headers=waiter.headers)
    assert (answer.status_code, answer.json()["code"]) == (422, "ad_hoc_price_conflict")
    assert "Espresso" in answer.json()["detail"]
    assert answer.json()["unit_prices"] == ["2.10", "2.50"]
    # An ad-hoc line named like a menu line of the order must take its price.
    like_menu = walk_in({"product_id": menu.soup.id, "quantity": 1}, ad_hoc("solar soup", "1.00"))
    answer = await client.post(ORDERS, json=like_menu, headers=waiter.headers)
    assert (answer.status_code, answer.json()["code"]) == (422, "ad_hoc_price_conflict")
    assert (await client.get(ORDERS, headers=waiter.headers)).json()["total"] == 0


async def test_a_line_is_either_from_the_menu_or_ad_hoc(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    waiter = await waiter_of(make_user, menu)
    for bad in (
        {"product_id": menu.soup.id, "product_name": "Soup", "unit_price": "1.00", "quantity": 1},
        {"quantity": 1},
    ):
        body = walk_in(ad_hoc("Espresso", "2.10"), bad)
        answer = await client.post(ORDERS, json=body, headers=waiter.headers)
        assert answer.status_code == 422
        (error,) = answer.json()["errors"]
        assert (error["field"], error["type"]) == ("items.1", "line_kind")
        assert "product_id" in error["message"]
    for price in ("0", "-1.00", "1.001", "100000000"):
        answer = await client.post(
            ORDERS, json=walk_in(ad_hoc("Espresso", price)), headers=waiter.headers
        )
        assert answer.status_code == 422, price
    too_many = walk_in(ad_hoc("Espresso", "2.10", 60), ad_hoc("espresso", "2.10", 60))
    answer = await client.post(ORDERS, json=too_many, headers=waiter.headers)
    assert (answer.status_code, answer.json()["code"]) == (422, "quantity_too_large")


async def test_customers_may_not_order_ad_hoc_lines(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    body = {"items": [ad_hoc("Espresso", "0.01")], "restaurant_id": menu.restaurant.id}
    answer = await client.post(ORDERS, json=body, headers=hero.headers)
    assert (answer.status_code, answer.json()["code"]) == (403, "staff_only_field")


async def test_a_waiter_orders_only_in_their_restaurants(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    mine = await make_menu(backend)
    theirs = await make_menu(backend, slug="other-place")
    waiter = await waiter_of(make_user, mine)
    for body in (
        walk_in({"product_id": theirs.soup.id, "quantity": 1}),
        walk_in(ad_hoc("Espresso", "2.10"), restaurant_id=theirs.restaurant.id),
    ):
        answer = await client.post(ORDERS, json=body, headers=waiter.headers)
        assert (answer.status_code, answer.json()["code"]) == (403, "not_restaurant_staff")
    nowhere = await make_user(Role.WAITER)
    answer = await client.post(
        ORDERS, json=walk_in({"product_id": mine.soup.id, "quantity": 1}), headers=nowhere.headers
    )
    assert (answer.status_code, answer.json()["code"]) == (403, "not_restaurant_staff")


async def test_the_restaurant_of_ad_hoc_lines_is_inferred_or_required(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    first = await make_menu(backend)
    second = await make_menu(backend, slug="second-place")
    one = await waiter_of(make_user, second)
    answer = await client.post(
        ORDERS, json=walk_in(ad_hoc("Espresso", "2.10")), headers=one.headers
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["restaurant_id"] == second.restaurant.id
    two = await waiter_of(make_user, first, second)
    answer = await client.post(
        ORDERS, json=walk_in(ad_hoc("Espresso", "2.10")), headers=two.headers
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "restaurant_required")
    assert "restaurant_id" in answer.json()["detail"]
    answer = await client.post(
        ORDERS,
        json=walk_in(ad_hoc("Espresso", "2.10"), restaurant_id=first.restaurant.id),
        headers=two.headers,
    )
    assert answer.json()["restaurant_id"] == first.restaurant.id
    admin = await make_user(Role.ADMIN)
    answer = await client.post(ORDERS, json=walk_in(ad_hoc("Tea", "1.00")), headers=admin.headers)
    assert (answer.status_code, answer.json()["code"]) == (422, "restaurant_required")
    answer = await client.post(
        ORDERS,
        json=walk_in(ad_hoc("Tea", "1.00"), restaurant_id=999_999),
        headers=admin.headers,
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "unknown_restaurant")


async def test_a_waiter_lists_only_the_orders_they_keyed_in(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    me, colleague = await waiter_of(make_user, menu), await waiter_of(make_user, menu)
    for waiter, name in ((me, "Mine"), (colleague, "Theirs"), (me, "Mine too")):
        placed = await client.post(
            ORDERS,
            json=walk_in(ad_hoc("Tea", "1.00"), customer_name=name),
            headers=waiter.headers,
        )
        assert placed.status_code == 202
    listed = (await client.get(ORDERS, headers=me.headers)).json()
    assert [o["customer_name"] for o in listed["items"]] == ["Mine too", "Mine"]
    assert listed["total"] == 2


async def test_walk_in_allergies_cancel_a_menu_line_not_an_ad_hoc_one(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    waiter = await waiter_of(make_user, menu)
    safe = await client.post(
        ORDERS,
        json=walk_in(ad_hoc("Peanut brittle", "3.00"), allergies=["gluten"]),
        headers=waiter.headers,
    )
    unsafe = await client.post(
        ORDERS,
        json=walk_in(
            {"product_id": menu.cake.id, "quantity": 1},
            ad_hoc("Espresso", "2.10"),
            allergies=["gluten"],
        ),
        headers=waiter.headers,
    )
    declared = await client.post(
        ORDERS,
        json=walk_in(ad_hoc("House bread", "3.00", allergens=["gluten"]), allergies=["Gluten"]),
        headers=waiter.headers,
    )
    await backend.settle()

    async def final(placed: httpx.Response) -> dict[str, Any]:
        answer = await client.get(f"{ORDERS}/{placed.json()['id']}", headers=waiter.headers)
        return dict(answer.json())

    assert (await final(safe))["status"] == "completed"
    cancelled = await final(unsafe)
    assert cancelled["status"] == "cancelled"
    assert '"Comet Cake"' in cancelled["message"] and "Espresso" not in cancelled["message"]
    assert (await final(declared))["status"] == "cancelled"


async def test_the_report_counts_ad_hoc_and_menu_lines_of_one_name_as_one_product(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    waiter = await waiter_of(make_user, menu)
    for body in (
        walk_in({"product_id": menu.soup.id, "quantity": 2}, ad_hoc("Bread", "1.00", 5)),
        walk_in(ad_hoc("solar soup ", "7.50", 1)),
    ):
        assert (await client.post(ORDERS, json=body, headers=waiter.headers)).status_code == 202
    await backend.settle()
    admin = await make_user(Role.ADMIN)
    report = (await client.get(f"{ORDERS}/report", headers=admin.headers)).json()
    assert [
        (i["product_name"], i["total_quantity"], i["total_price"]) for i in report["items"]
    ] == [
        ("Bread", 5, "5.00"),
        ("Solar Soup", 3, "22.50"),
    ]


async def test_an_owner_creates_waiters_for_own_restaurants_only(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    mine = await make_menu(backend, owner_id=owner.user.id)
    theirs = await make_menu(backend, slug="not-mine")

    def account(n: int, **extra: Any) -> dict[str, Any]:
        return {"email": f"waiter{n}@acme.io", "password": PASSWORD, "name": f"W {n}", **extra}

    created = await client.post(
        USERS,
        json=account(1, role="waiter", restaurant_ids=[mine.restaurant.id]),
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    assert (created.json()["full_name"], created.json()["role"]) == ("W 1", "waiter")
    assert created.json()["restaurant_ids"] == [mine.restaurant.id]
    refused = [
        account(2, role="waiter", restaurant_ids=[theirs.restaurant.id]),
        account(3, role="waiter", restaurant_ids=[mine.restaurant.id, theirs.restaurant.id]),
        account(4, role="customer"),
        account(5, role="waiter"),
    ]
    for body in refused:
        answer = await client.post(USERS, json=body, headers=owner.headers)
        assert answer.status_code == 403, body
    hero = await make_user()
    answer = await client.post(
        USERS,
        json=account(6, role="waiter", restaurant_ids=[mine.restaurant.id]),
        headers=hero.headers,
    )
    assert answer.status_code == 403
    # The new waiter orders in the owner's restaurant at once.
    login = await client.post(
        f"{API}/auth/login", json={"email": "waiter1@acme.io", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    placed = await client.post(ORDERS, json=walk_in(ad_hoc("Tea", "1.00")), headers=headers)
    assert placed.json()["restaurant_id"] == mine.restaurant.id


async def test_admin_sets_restaurant_ids_and_name_is_an_alias_of_full_name(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    one, two = await make_menu(backend), await make_menu(backend, slug="two")
    body = {"email": "w@acme.io", "password": PASSWORD, "name": "Yondu", "role": "waiter"}
    created = (await client.post(USERS, json=body, headers=admin.headers)).json()
    assert (created["full_name"], created["restaurant_ids"]) == ("Yondu", [])
    url = f"{USERS}/{created['id']}"
    ids = [two.restaurant.id, one.restaurant.id]
    patched = await client.patch(url, json={"restaurant_ids": ids}, headers=admin.headers)
    assert patched.json()["restaurant_ids"] == sorted(ids)
    assert (await client.get(url, headers=admin.headers)).json()["restaurant_ids"] == sorted(ids)
    listed = await client.get(USERS, params={"role": "waiter"}, headers=admin.headers)
    assert listed.json()["items"][0]["restaurant_ids"] == sorted(ids)
    both = {**body, "email": "x@acme.io", "full_name": "Yondu"}
    assert (await client.post(USERS, json=both, headers=admin.headers)).status_code == 422
    customer = {**body, "email": "c@acme.io", "role": "customer", "restaurant_ids": ids}
    answer = await client.post(USERS, json=customer, headers=admin.headers)
    assert (answer.status_code, answer.json()["code"]) == (422, "restaurant_ids_not_allowed")
    unknown = await client.patch(url, json={"restaurant_ids": [999_999]}, headers=admin.headers)
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_restaurant")
    demoted = await client.patch(url, json={"role": "courier"}, headers=admin.headers)
    assert demoted.json()["restaurant_ids"] == []


async def test_an_owner_manages_their_restaurants_waiters(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    mine = await make_menu(backend, owner_id=owner.user.id)
    theirs = await make_menu(backend, slug="not-mine")
    waiter, hero = await make_user(Role.WAITER), await make_user()
    base = f"{API}/restaurants/{mine.restaurant.id}/waiters"
    added = await client.put(f"{base}/{waiter.user.id}", headers=owner.headers)
    assert [w["id"] for w in added.json()] == [waiter.user.id]
    again = await client.put(f"{base}/{waiter.user.id}", headers=owner.headers)
    assert [w["id"] for w in again.json()] == [waiter.user.id]
    not_waiter = await client.put(f"{base}/{hero.user.id}", headers=owner.headers)
    assert (not_waiter.status_code, not_waiter.json()["code"]) == (422, "not_a_waiter")
    foreign = f"{API}/restaurants/{theirs.restaurant.id}/waiters"
    assert (
        await client.put(f"{foreign}/{waiter.user.id}", headers=owner.headers)
    ).status_code == 403
    assert (await client.get(foreign, headers=owner.headers)).status_code == 403
    assert (await client.get(base, headers=waiter.headers)).status_code == 403
    placed = await client.post(ORDERS, json=walk_in(ad_hoc("Tea", "1.00")), headers=waiter.headers)
    assert placed.status_code == 202
    removed = await client.delete(f"{base}/{waiter.user.id}", headers=owner.headers)
    assert removed.status_code == 204
    assert (await client.get(base, headers=owner.headers)).json() == []
    answer = await client.post(ORDERS, json=walk_in(ad_hoc("Tea", "1.00")), headers=waiter.headers)
    assert (answer.status_code, answer.json()["code"]) == (403, "not_restaurant_staff")


async def test_existing_waiter_membership_helper_matches_the_api(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    waiter = await make_user(Role.WAITER)
    await add_waiter(backend, menu.restaurant.id, waiter.user.id)
    admin = await make_user(Role.ADMIN)
    read = await client.get(f"{USERS}/{waiter.user.id}", headers=admin.headers)
    assert read.json()["restaurant_ids"] == [menu.restaurant.id]


async def test_a_waiters_menu_order_runs_no_more_statements_than_a_customers(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    """The waiter check rides on placement's menu read: an order without ad-hoc lines makes
    no extra query. (On PostgreSQL the menu and insert statements go to the driver directly
    and are not seen here; on SQLite every statement is.)"""
    menu = await make_menu(backend)
    waiter, hero = await waiter_of(make_user, menu), await make_user()
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def place(body: dict[str, Any], headers: dict[str, str]) -> list[str]:
        await backend.settle()
        statements.clear()
        event.listen(backend.runtime.engine.sync_engine, "before_cursor_execute", count)
        try:
            response = await client.post(ORDERS, json=body, headers=headers)
        finally:
            event.remove(backend.runtime.engine.sync_engine, "before_cursor_execute", count)
        assert response.status_code == 202, response.text
        inserts = (n for n, s in enumerate(statements) if "INSERT INTO customer_order" in s)
        return statements[: next(inserts, len(statements))]

    items = [{"product_id": menu.soup.id, "quantity": 1}]
    by_customer = await place({"items": items}, hero.headers)
    by_waiter = await place(walk_in(*items), waiter.headers)
    assert len(by_waiter) == len(by_customer)
    assert not [s for s in by_waiter if s.lstrip().startswith("SELECT restaurant_staff")]
