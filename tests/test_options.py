"""Drink options: option groups managed by the menu's owner, checked, priced and snapshotted
on order lines, merged when equal, and seen by the allergen check."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from commissary.models import Role
from commissary.orders import pricing
from tests.conftest import Account, Backend, MakeUser
from tests.test_catalog import API, make_product, make_restaurant

ORDERS = f"{API}/orders"


@dataclass
class Coffee:
    owner: Account
    restaurant_id: int
    latte: int  # 3.00, Size 1/1, Milk 1/1, Extras 0/3
    espresso: int  # 2.00, no options
    groups: dict[str, int]
    options: dict[str, int]


GROUPS: list[dict[str, Any]] = [
    {
        "name": "Size",
        "min_choices": 1,
        "max_choices": 1,
        "position": 0,
        "options": [
            {"name": "S"},
            {"name": "M", "price_delta": "0.50", "position": 1},
            {"name": "L", "price_delta": "1.00", "position": 2},
        ],
    },
    {
        "name": "Milk",
        "min_choices": 1,
        "max_choices": 1,
        "position": 1,
        "options": [
            {"name": "Whole", "ingredients": ["milk"], "allergens": ["lactose"]},
            {
                "name": "Oat",
                "price_delta": "0.40",
                "ingredients": ["oats"],
                "allergens": ["gluten"],
            },
            {"name": "Soy", "price_delta": "0.40", "ingredients": ["soy"], "allergens": ["soy"]},
        ],
    },
    {
        "name": "Extras",
        "min_choices": 0,
        "max_choices": 3,
        "position": 2,
        "options": [
            {"name": "Syrup", "price_delta": "0.30", "ingredients": ["sugar"]},
            {"name": "Extra shot", "price_delta": "0.60", "ingredients": ["espresso"]},
        ],
    },
]


async def make_coffee(
    client: httpx.AsyncClient, make_user: MakeUser, *, slug: str = "bean-there"
) -> Coffee:
    """A coffee shop, owned by a restaurateur, with a latte that has options."""
    admin = await make_user(Role.ADMIN)
    owner = await make_user(Role.RESTAURATEUR)
    place = await make_restaurant(
        client, admin, name="Bean There", slug=slug, owner_ids=[owner.user.id]
    )
    latte = await make_product(
        client, owner, place["id"], name="Latte", price="3.00", ingredients=["espresso"]
    )
    espresso = await make_product(client, owner, place["id"], name="Espresso", price="2.00")
    groups: dict[str, int] = {}
    options: dict[str, int] = {}
    for group in GROUPS:
        response = await client.post(
            f"{API}/products/{latte['id']}/option-groups", json=group, headers=owner.headers
        )
        assert response.status_code == 201, response.text
        groups[group["name"]] = response.json()["id"]
        options.update({o["name"]: o["id"] for o in response.json()["options"]})
    return Coffee(owner, place["id"], latte["id"], espresso["id"], groups, options)


def item(product_id: int, quantity: int = 1, *options: int) -> dict[str, Any]:
    return {"product_id": product_id, "quantity": quantity, "options": list(options)}


async def test_the_product_shows_its_groups_and_a_line_is_priced_with_its_options(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    product = (await client.get(f"{API}/products/{coffee.latte}")).json()
    assert [g["name"] for g in product["option_groups"]] == ["Size", "Milk", "Extras"]
    size = product["option_groups"][0]
    assert (size["min_choices"], size["max_choices"]) == (1, 1)
    assert [(o["name"], o["price_delta"]) for o in size["options"]] == [
        ("S", "0.00"),
        ("M", "0.50"),
        ("L", "1.00"),
    ]
    hero = await make_user()
    o = coffee.options
    body = {"items": [item(coffee.latte, 2, o["Extra shot"], o["L"], o["Oat"], o["Syrup"])]}
    response = await client.post(ORDERS, json=body, headers=hero.headers)
    assert response.status_code == 202, response.text
    order = response.json()
    [line] = order["items"]
    # (3.00 + 1.00 + 0.40 + 0.30 + 0.60) x 2
    assert (line["unit_price"], line["line_total"], order["total"]) == ("5.30", "10.60", "10.60")
    assert [(c["group"], c["name"], c["price_delta"]) for c in line["options"]] == [
        ("Size", "L", "1.00"),
        ("Milk", "Oat", "0.40"),
        ("Extras", "Syrup", "0.30"),
        ("Extras", "Extra shot", "0.60"),
    ]
    assert line["options"][1]["allergens"] == ["gluten"]


async def test_the_snapshot_outlives_a_change_of_the_option(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    hero = await make_user()
    body = {"items": [item(coffee.latte, 1, coffee.options["M"], coffee.options["Soy"])]}
    order = (await client.post(ORDERS, json=body, headers=hero.headers)).json()
    url = f"{API}/products/{coffee.latte}/options/{coffee.options['Soy']}"
    changed = await client.patch(
        url, json={"name": "Soya", "price_delta": "0.90"}, headers=coffee.owner.headers
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["price_delta"]) == ("Soya", "0.90")
    again = (await client.get(f"{ORDERS}/{order['id']}", headers=hero.headers)).json()
    [line] = again["items"]
    assert line["unit_price"] == "3.90"
    assert [(c["name"], c["price_delta"]) for c in line["options"]] == [
        ("M", "0.50"),
        ("Soy", "0.40"),
    ]


@pytest.mark.parametrize(
    ("chosen", "status", "code"),
    [
        (["Oat"], 422, "option_choice_count"),  # no size
        (["S", "M", "Oat"], 422, "option_choice_count"),  # two sizes
        (["S", "Oat", "Oat"], 422, "duplicate_option"),
        (["S", "Oat", "other"], 422, "unknown_option"),
        (["S", "Oat", "off"], 409, "option_unavailable"),
    ],
)
async def test_a_line_must_follow_the_groups_rules(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    chosen: list[str],
    status: int,
    code: str,
) -> None:
    coffee = await make_coffee(client, make_user)
    options = dict(coffee.options)
    # An option of another product, and one taken off the menu.
    other = await client.post(
        f"{API}/products/{coffee.espresso}/option-groups",
        json={"name": "Cup", "options": [{"name": "Paper"}]},
        headers=coffee.owner.headers,
    )
    options["other"] = other.json()["options"][0]["id"]
    extra = await client.post(
        f"{API}/products/{coffee.latte}/option-groups/{coffee.groups['Extras']}/options",
        json={"name": "Cinnamon", "is_available": False},
        headers=coffee.owner.headers,
    )
    assert extra.status_code == 201, extra.text
    options["off"] = extra.json()["id"]
    hero = await make_user()
    body = {"items": [item(coffee.latte, 1, *(options[name] for name in chosen))]}
    response = await client.post(ORDERS, json=body, headers=hero.headers)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    listed = await client.get(f"{ORDERS}", headers=hero.headers)
    assert listed.json()["total"] == 0


async def test_a_product_without_options_refuses_options_and_orders_as_before(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    hero = await make_user()
    refused = await client.post(
        ORDERS,
        json={"items": [item(coffee.espresso, 1, coffee.options["S"])]},
        headers=hero.headers,
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "unknown_option")
    plain = await client.post(
        ORDERS,
        json={"items": [{"product_id": coffee.espresso, "quantity": 2}]},
        headers=hero.headers,
    )
    assert plain.status_code == 202, plain.text
    assert plain.json()["items"][0]["options"] == []
    assert plain.json()["total"] == "4.00"


async def test_equal_lines_merge_and_different_options_do_not(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    o = coffee.options
    hero = await make_user()
    body = {
        "items": [
            item(coffee.latte, 1, o["S"], o["Oat"]),
            item(coffee.espresso, 1),
            item(coffee.latte, 2, o["Oat"], o["S"]),
            item(coffee.latte, 1, o["S"], o["Whole"]),
            item(coffee.espresso, 3),
        ]
    }
    response = await client.post(ORDERS, json=body, headers=hero.headers)
    assert response.status_code == 202, response.text
    lines = [
        (line["product_name"], [c["name"] for c in line["options"]], line["quantity"])
        for line in response.json()["items"]
    ]
    assert lines == [
        ("Latte", ["S", "Oat"], 3),
        ("Espresso", [], 4),
        ("Latte", ["S", "Whole"], 1),
    ]
    assert response.json()["total"] == "21.20"  # 3 x 3.40 + 4 x 2.00 + 3.00


async def test_merged_lines_stay_within_the_quantity_ceiling(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    most = backend.settings.order_max_quantity
    hero = await make_user()
    body = {"items": [item(coffee.espresso, most), item(coffee.espresso, 1)]}
    response = await client.post(ORDERS, json=body, headers=hero.headers)
    assert (response.status_code, response.json()["code"]) == (422, "quantity_too_large")


async def test_an_option_that_clashes_with_an_allergy_cancels_the_order_naming_it(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    o = coffee.options
    hero = await make_user(allergies=["Gluten"])
    safe = await client.post(
        ORDERS, json={"items": [item(coffee.latte, 1, o["M"], o["Soy"])]}, headers=hero.headers
    )
    risky = await client.post(
        ORDERS,
        json={"items": [item(coffee.espresso, 1), item(coffee.latte, 1, o["M"], o["Oat"])]},
        headers=hero.headers,
    )
    assert safe.status_code == risky.status_code == 202
    await backend.settle()
    done = (await client.get(f"{ORDERS}/{safe.json()['id']}", headers=hero.headers)).json()
    assert done["status"] == "completed"
    cancelled = (await client.get(f"{ORDERS}/{risky.json()['id']}", headers=hero.headers)).json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["message"] == (
        'Cancelled for your safety: line 2 "Latte" option "Oat": allergen "gluten" '
        'matches allergy "Gluten".'
    )


async def test_only_the_menus_owner_manages_options(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    stranger = await make_user(Role.RESTAURATEUR)
    hero = await make_user()
    groups = f"{API}/products/{coffee.latte}/option-groups"
    body = {"name": "Lid"}
    assert (await client.post(groups, json=body, headers=stranger.headers)).status_code == 403
    assert (await client.post(groups, json=body, headers=hero.headers)).status_code == 403
    assert (await client.post(groups, json=body)).status_code == 401
    option = f"{API}/products/{coffee.latte}/options/{coffee.options['Oat']}"
    refused = await client.patch(option, json={"price_delta": "0"}, headers=stranger.headers)
    assert refused.status_code == 403
    assert (await client.delete(option, headers=stranger.headers)).status_code == 403
    # An option is reached only through its own product.
    elsewhere = f"{API}/products/{coffee.espresso}/options/{coffee.options['Oat']}"
    assert (await client.get(elsewhere)).status_code == 404
    assert (await client.get(option)).json()["price_delta"] == "0.40"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Size", "min_choices": 2, "max_choices": 1}, None),
        ({"name": "Size", "max_choices": 0}, "max_choices"),
        ({"name": "Size", "options": [{"name": "S", "price_delta": "-0.10"}]}, "price_delta"),
        ({"name": "Size", "options": [{"name": "S", "price_delta": "0.105"}]}, "price_delta"),
        ({"name": " "}, "name"),
    ],
)
async def test_bad_groups_are_refused_naming_the_field(
    client: httpx.AsyncClient, make_user: MakeUser, body: dict[str, Any], field: str | None
) -> None:
    coffee = await make_coffee(client, make_user)
    response = await client.post(
        f"{API}/products/{coffee.espresso}/option-groups", json=body, headers=coffee.owner.headers
    )
    assert response.status_code == 422, response.text
    if field is not None:
        assert field in str(response.json()["errors"])
    groups = await client.get(f"{API}/products/{coffee.espresso}/option-groups")
    assert groups.json()["total"] == 0


async def test_groups_are_updated_deleted_and_listed_with_the_whitelist(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    groups = f"{API}/products/{coffee.latte}/option-groups"
    extras = f"{groups}/{coffee.groups['Extras']}"
    too_few = await client.patch(
        extras, json={"max_choices": 1, "min_choices": 2}, headers=coffee.owner.headers
    )
    assert (too_few.status_code, too_few.json()["code"]) == (422, "option_choice_range")
    changed = await client.patch(extras, json={"max_choices": 1}, headers=coffee.owner.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["max_choices"] == 1

    listed = await client.get(groups, params={"sort": "-name", "max_choices": 1, "limit": 2})
    assert listed.status_code == 200, listed.text
    assert [g["name"] for g in listed.json()["items"]] == ["Size", "Milk"]
    assert listed.json()["total"] == 3
    found = await client.get(groups, params={"search": "xtra"})
    assert [g["name"] for g in found.json()["items"]] == ["Extras"]
    bad = await client.get(groups, params={"sort": "price_delta"})
    assert (bad.status_code, bad.json()["parameter"]) == (400, "sort")
    missing = await client.get(f"{API}/products/999999/option-groups")
    assert missing.status_code == 404

    assert (await client.delete(extras, headers=coffee.owner.headers)).status_code == 204
    assert (await client.get(extras)).status_code == 404
    shot = f"{API}/products/{coffee.latte}/options/{coffee.options['Extra shot']}"
    assert (await client.get(shot)).status_code == 404
    product = (await client.get(f"{API}/products/{coffee.latte}")).json()
    assert [g["name"] for g in product["option_groups"]] == ["Size", "Milk"]


async def test_option_group_lists_declare_their_parameters(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][f"{API}/products/{{product_id}}/option-groups"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"limit", "offset", "sort", "search", "name__icontains", "max_choices__lte"} <= names
    assert operation["operationId"] == "catalog_list_option_groups"
    assert "404" in operation["responses"]


async def test_options_are_read_only_for_lines_that_need_them(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    """Placement reads the option groups in one extra statement, and only when a product of
    the order has groups: an order without options runs the statements it ran before."""
    coffee = await make_coffee(client, make_user)
    hero = await make_user()
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def place(*items: dict[str, Any]) -> list[str]:
        await backend.settle()  # no job of an earlier order runs meanwhile
        statements.clear()
        event.listen(backend.runtime.engine.sync_engine, "before_cursor_execute", count)
        try:
            response = await client.post(ORDERS, json={"items": list(items)}, headers=hero.headers)
        finally:
            event.remove(backend.runtime.engine.sync_engine, "before_cursor_execute", count)
        assert response.status_code == 202, response.text
        # Up to the order's insert: the worker may run in process right after the commit.
        # (On PostgreSQL the caller, menu and insert statements go to the driver directly
        # and are not seen here; the option read goes through the session on both.)
        inserts = (n for n, s in enumerate(statements) if "INSERT INTO customer_order" in s)
        return statements[: next(inserts, len(statements))]

    plain = await place(item(coffee.espresso, 1))
    o = coffee.options
    chosen = await place(item(coffee.espresso, 1), item(coffee.latte, 1, o["S"], o["Soy"]))

    def reads(statements: list[str], start: str) -> int:
        return sum(1 for s in statements if s.lstrip().startswith(start))

    # Counted by kind: on SQLite the in-process order sweep may run a statement meanwhile.
    assert reads(chosen, "SELECT option_group.product_id") == 1
    assert reads(plain, "SELECT option_group.product_id") == 0
    menu_read = "SELECT product.id"
    assert reads(chosen, menu_read) == reads(plain, menu_read) <= 1


@dataclass
class _Item:
    product_id: int
    quantity: int
    options: list[int]


@given(
    st.lists(
        st.builds(
            _Item,
            st.integers(1, 3),
            st.integers(1, 5),
            st.lists(st.integers(1, 4), max_size=3, unique=True),
        ),
        max_size=12,
    )
)
def test_merging_keeps_every_unit_and_leaves_one_line_per_product_and_options(
    items: list[_Item],
) -> None:
    lines = pricing.merge(items, max_quantity=1000)
    keys = [(line.product_id, line.options) for line in lines]
    assert len(keys) == len(set(keys))
    for key in keys:
        wanted = sum(i.quantity for i in items if (i.product_id, tuple(sorted(i.options))) == key)
        assert next(line.quantity for line in lines if (line.product_id, line.options) == key) == (
            wanted
        )
    assert sum(line.quantity for line in lines) == sum(i.quantity for i in items)


@given(
    st.decimals("0.01", "1000", places=2),
    st.lists(st.decimals("0", "100", places=2), max_size=5),
)
def test_a_unit_price_is_the_price_plus_the_deltas_exactly(
    price: Decimal, deltas: list[Decimal]
) -> None:
    choices = [
        pricing.Choice(n, 1, "Extras", f"o{n}", delta, (), (), True)
        for n, delta in enumerate(deltas)
    ]
    assert pricing.unit_price(price, choices) == price + sum(deltas, start=Decimal(0))
