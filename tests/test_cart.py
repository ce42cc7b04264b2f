"""The cart: one per customer, priced from the menu, one restaurant at a time, and checked
out through order placement exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from commissary.models import Order, Role
from tests.conftest import Account, Backend, MakeUser
from tests.test_catalog import API, hours_around, make_product, make_restaurant
from tests.test_options import Coffee, make_coffee

CART = f"{API}/cart"
ITEMS = f"{CART}/items"
CHECKOUT = f"{CART}/checkout"


async def count_orders(backend: Backend) -> int:
    async with backend.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def add(
    client: httpx.AsyncClient, hero: Account, product_id: int, quantity: int = 1, *options: int
) -> httpx.Response:
    body = {"product_id": product_id, "quantity": quantity, "options": list(options)}
    return await client.post(ITEMS, json=body, headers=hero.headers)


async def filled(client: httpx.AsyncClient, hero: Account, coffee: Coffee) -> dict[str, Any]:
    o = coffee.options
    assert (await add(client, hero, coffee.latte, 1, o["L"], o["Oat"])).status_code == 200
    assert (await add(client, hero, coffee.espresso, 2)).status_code == 200
    response = await add(client, hero, coffee.latte, 1, o["Oat"], o["L"])  # the same line
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_cart_is_priced_from_the_menu_with_warnings_then_checked_out(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    hero = await make_user(allergies=["gluten"])
    cart = await filled(client, hero, coffee)
    assert [
        (i["product_name"], [o["name"] for o in i["options"]], i["quantity"], i["unit_price"])
        for i in cart["items"]
    ] == [("Latte", ["L", "Oat"], 2, "4.40"), ("Espresso", [], 2, "2.00")]
    assert (cart["total"], cart["currency"], cart["can_checkout"]) == ("12.80", "EUR", True)
    assert cart["restaurant_id"] == coffee.restaurant_id
    assert cart["items"][0]["allergy_warnings"] == [
        'line 1 "Latte" option "Oat": allergen "gluten" matches allergy "gluten"'
    ]
    assert cart["items"][1]["allergy_warnings"] == []

    # Prices follow the menu until checkout.
    await client.patch(
        f"{API}/products/{coffee.espresso}", json={"price": "2.20"}, headers=coffee.owner.headers
    )
    espresso = cart["items"][1]["id"]
    changed = await client.patch(f"{ITEMS}/{espresso}", json={"quantity": 3}, headers=hero.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["items"][1]["line_total"] == "6.60"
    assert changed.json()["total"] == "15.40"

    response = await client.post(CHECKOUT, json={"note": "no lid"}, headers=hero.headers)
    assert response.status_code == 202, response.text
    order = response.json()
    assert response.headers["location"].endswith(f"/orders/{order['id']}")
    assert order["total"] == "15.40"
    assert order["note"] == "no lid"
    assert [(i["product_name"], i["quantity"]) for i in order["items"]] == [
        ("Latte", 2),
        ("Espresso", 3),
    ]
    assert [o["name"] for o in order["items"][0]["options"]] == ["L", "Oat"]
    empty = (await client.get(CART, headers=hero.headers)).json()
    assert (empty["items"], empty["total"], empty["can_checkout"]) == ([], "0.00", False)
    again = await client.post(CHECKOUT, headers=hero.headers)
    assert (again.status_code, again.json()["code"]) == (409, "cart_empty")
    await backend.settle()  # the worker cancels it for the oat milk, as any order
    done = (await client.get(f"{API}/orders/{order['id']}", headers=hero.headers)).json()
    assert done["status"] == "cancelled"
    assert 'option "Oat"' in done["message"]


async def test_lines_are_removed_and_the_cart_emptied(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    hero = await make_user()
    cart = await filled(client, hero, coffee)
    first = cart["items"][0]["id"]
    left = await client.delete(f"{ITEMS}/{first}", headers=hero.headers)
    assert [i["product_name"] for i in left.json()["items"]] == ["Espresso"]
    assert (await client.delete(f"{ITEMS}/{first}", headers=hero.headers)).status_code == 404
    assert (await client.delete(CART, headers=hero.headers)).status_code == 204
    assert (await client.get(CART, headers=hero.headers)).json()["items"] == []


async def test_a_cart_holds_one_restaurant(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    coffee = await make_coffee(client, make_user)
    admin = await make_user(Role.ADMIN)
    other = await make_restaurant(client, admin, name="Tea Time", slug="tea-time")
    tea = await make_product(client, admin, other["id"], name="Green tea", price="2.50")
    hero = await make_user()
    assert (await add(client, hero, coffee.espresso)).status_code == 200
    refused = await add(client, hero, tea["id"])
    assert (refused.status_code, refused.json()["code"]) == (409, "cart_other_restaurant")
    assert "Bean There" in refused.json()["detail"]
    await client.delete(CART, headers=hero.headers)
    assert (await add(client, hero, tea["id"])).status_code == 200


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("product", "not available now"),
        ("option", 'not available now: "Oat"'),
    ],
)
async def test_a_line_that_became_unavailable_blocks_checkout_with_a_reason(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, change: str, problem: str
) -> None:
    coffee = await make_coffee(client, make_user)
    hero = await make_user()
    await filled(client, hero, coffee)
    if change == "product":
        url = f"{API}/products/{coffee.latte}"
    else:
        url = f"{API}/products/{coffee.latte}/options/{coffee.options['Oat']}"
    off = await client.patch(url, json={"is_available": False}, headers=coffee.owner.headers)
    assert off.status_code == 200, off.text
    cart = (await client.get(CART, headers=hero.headers)).json()
    latte, espresso = cart["items"]
    assert (latte["is_available"], espresso["is_available"]) == (False, True)
    assert problem in latte["problem"]
    assert cart["can_checkout"] is False
    refused = await client.post(CHECKOUT, headers=hero.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == f"{change}_unavailable"
    assert await count_orders(backend) == 0
    kept = (await client.get(CART, headers=hero.headers)).json()
    assert [i["id"] for i in kept["items"]] == [latte["id"], espresso["id"]]


async def test_checkout_follows_the_placement_rules(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    unverified = await make_user(verified=False)
    assert (await add(client, unverified, coffee.espresso)).status_code == 200
    refused = await client.post(CHECKOUT, headers=unverified.headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "email_not_verified")

    hero = await make_user()
    assert (await add(client, hero, coffee.espresso)).status_code == 200
    no_address = await client.post(CHECKOUT, json={"fulfillment": "delivery"}, headers=hero.headers)
    assert no_address.status_code == 422
    hours = hours_around(dt.datetime.now(dt.UTC), 2, 3)
    admin = await make_user(Role.ADMIN)
    closed = await client.patch(
        f"{API}/restaurants/{coffee.restaurant_id}",
        json={"opening_hours": hours},
        headers=admin.headers,
    )
    assert closed.status_code == 200
    refused = await client.post(CHECKOUT, headers=hero.headers)
    assert (refused.status_code, refused.json()["code"]) == (409, "restaurant_closed")
    assert await count_orders(backend) == 0
    assert len((await client.get(CART, headers=hero.headers)).json()["items"]) == 1


async def test_quantities_stay_within_the_order_ceiling(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    most = backend.settings.order_max_quantity
    hero = await make_user()
    assert (await add(client, hero, coffee.espresso, most)).status_code == 200
    refused = await add(client, hero, coffee.espresso, 1)
    assert (refused.status_code, refused.json()["code"]) == (422, "quantity_too_large")
    line = (await client.get(CART, headers=hero.headers)).json()["items"][0]
    assert line["quantity"] == most
    too_many = await client.patch(
        f"{ITEMS}/{line['id']}", json={"quantity": most + 1}, headers=hero.headers
    )
    assert too_many.status_code == 422
    zero = await client.patch(f"{ITEMS}/{line['id']}", json={"quantity": 0}, headers=hero.headers)
    assert zero.status_code == 422


async def test_bad_lines_are_refused_and_nothing_is_kept(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    hero = await make_user()
    missing = await add(client, hero, 999_999)
    assert (missing.status_code, missing.json()["code"]) == (422, "unknown_product")
    no_size = await add(client, hero, coffee.latte, 1, coffee.options["Oat"])
    assert (no_size.status_code, no_size.json()["code"]) == (422, "option_choice_count")
    assert (await client.get(CART, headers=hero.headers)).json()["items"] == []


async def test_a_cart_is_its_customers_own(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    coffee = await make_coffee(client, make_user)
    hero = await make_user()
    thief = await make_user()
    line = (await add(client, hero, coffee.espresso)).json()["items"][0]
    url = f"{ITEMS}/{line['id']}"
    assert (await client.patch(url, json={"quantity": 5}, headers=thief.headers)).status_code == 404
    assert (await client.delete(url, headers=thief.headers)).status_code == 404
    assert (await client.get(CART, headers=thief.headers)).json()["items"] == []
    assert (await client.post(CHECKOUT, headers=thief.headers)).status_code == 409
    assert (await client.get(CART, headers=hero.headers)).json()["items"][0]["quantity"] == 1
    waiter = await make_user(Role.WAITER)
    assert (await client.get(CART, headers=waiter.headers)).status_code == 403
    assert (await client.get(CART)).status_code == 401


async def test_two_checkouts_of_one_cart_at_the_same_moment_give_one_order(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    for round_ in range(1, 4):
        hero = await make_user()
        await filled(client, hero, coffee)
        answers = await asyncio.gather(
            *(client.post(CHECKOUT, headers=hero.headers) for _ in range(2))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [202, 409], [a.text for a in answers]
        loser = next(a for a in answers if a.status_code == 409)
        assert loser.json()["code"] == "cart_empty"
        assert await count_orders(backend) == round_
