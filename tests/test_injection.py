"""SQL injection and stored script payloads: pushed through every filter, sort, search and
free-text field, they are refused (4xx) or taken as plain text, and change nothing else."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from commissary.catalog import repository as catalog_repo
from commissary.core.listing import ListSpec
from commissary.core.text import strip_html
from commissary.models import Category, Order, Product, Restaurant, Role, User
from commissary.orders import repository as orders_repo
from commissary.users import repository as users_repo
from tests.conftest import Account, Backend, MakeUser
from tests.menu import make_menu
from tests.test_catalog import API

SQL = [
    "' OR '1'='1",
    "1; DROP TABLE product;--",
    "') OR 1=1 --",
    "1 UNION SELECT password_hash FROM user_account",
    "%",
    "_",
    "\\",
    '"; DELETE FROM "user_account"; --',
]
SCRIPT = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "&lt;script&gt;",
]
MATCHING_OPS = {"eq", "in", "contains", "icontains"}
TABLES = (Product, Restaurant, Category, User, Order)


async def counts(backend: Backend) -> dict[str, int]:
    async with backend.runtime.sessionmaker() as session:
        return {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in TABLES
        }


@pytest.fixture
async def world(backend: Backend, make_user: MakeUser) -> dict[str, Any]:
    """A menu, an order and one account of each role that lists something."""
    admin = await make_user(Role.ADMIN)
    hero = await make_user(planet="Xandar")
    menu = await make_menu(backend)
    transport = httpx.ASGITransport(app=backend.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        placed = await http.post(
            f"{API}/orders",
            json={"items": [{"product_id": menu.soup.id, "quantity": 1}]},
            headers=hero.headers,
        )
        assert placed.status_code == 202, placed.text
        category = await http.post(
            f"{API}/categories", json={"name": "Soups"}, headers=admin.headers
        )
        assert category.status_code == 201, category.text
    return {"admin": admin, "hero": hero, "menu": menu}


def lists(world: dict[str, Any]) -> list[tuple[str, ListSpec, dict[str, str]]]:
    admin: Account = world["admin"]
    return [
        ("/products", catalog_repo.PRODUCT_LIST, {}),
        ("/restaurants", catalog_repo.RESTAURANT_LIST, {}),
        ("/categories", catalog_repo.CATEGORY_LIST, {}),
        ("/users", users_repo.USER_LIST, admin.headers),
        ("/orders", orders_repo.ORDER_LIST, admin.headers),
    ]


async def test_injection_in_every_filter_sort_and_search_changes_nothing(
    client: httpx.AsyncClient, backend: Backend, world: dict[str, Any]
) -> None:
    before = await counts(backend)
    seen: set[int] = set()
    for path, spec, headers in lists(world):
        full = await client.get(f"{API}{path}", headers=headers)
        assert full.status_code == 200 and full.json()["total"] >= 1, (path, full.text)
        queries: list[dict[str, str]] = []
        for payload in SQL + SCRIPT:
            queries += [{"search": payload}, {"sort": payload}, {"sort": f"-{payload}"}]
            queries += [{"limit": payload}, {"offset": payload}, {payload: "1"}]
            for name, rule in spec.filters.items():
                queries += [{f"{name}__{op}": payload} for op in sorted(rule.ops)]
                queries.append({name: payload})
        for params in queries:
            response = await client.get(f"{API}{path}?{urlencode(params)}", headers=headers)
            seen.add(response.status_code)
            assert response.status_code in (200, 400), (path, params, response.text)
            if response.status_code == 400:
                assert response.headers["content-type"] == "application/problem+json"
                continue
            ((key, _),) = params.items()
            op = key.rpartition("__")[2] if "__" in key else "eq"
            if key == "search" or op in MATCHING_OPS:
                # The payload is a value to compare with, and no row holds it.
                assert response.json()["total"] == 0, (path, params, response.text)
    assert seen == {200, 400}
    assert await counts(backend) == before
    # Nothing was read that should not be: no answer carries a password hash.
    users = await client.get(f"{API}/users", headers=world["admin"].headers)
    assert "argon2" not in users.text


async def test_injection_and_scripts_in_text_fields_are_stored_as_plain_text(
    client: httpx.AsyncClient, backend: Backend, world: dict[str, Any]
) -> None:
    admin: Account = world["admin"]
    restaurant_id = world["menu"].restaurant.id
    before = await counts(backend)
    for n, payload in enumerate(SQL):
        response = await client.post(
            f"{API}/products",
            json={
                "restaurant_id": restaurant_id,
                "name": f"{payload} {n}",
                "price": "1.00",
                "description": payload,
                "origin": payload,
                "ingredients": [payload],
            },
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text
        stored = response.json()
        assert stored["name"] == f"{payload} {n}"
        assert stored["description"] == payload and stored["origin"] == payload
        assert stored["ingredients"] == [payload]
        found = await client.get(f"{API}/products", params={"name": f"{payload} {n}"})
        assert [p["id"] for p in found.json()["items"]] == [stored["id"]]
    after = await counts(backend)
    assert after == {**before, "product": before["product"] + len(SQL)}


async def test_markup_is_dropped_from_free_text_and_entities_are_not_doubled(
    client: httpx.AsyncClient, backend: Backend, world: dict[str, Any], make_user: MakeUser
) -> None:
    admin: Account = world["admin"]
    restaurant_id = world["menu"].restaurant.id
    created = await client.post(
        f"{API}/products",
        json={
            "restaurant_id": restaurant_id,
            "name": "<script>alert(1)</script>Fish & Chips",
            "description": "<b>Crispy</b> &amp; hot<img src=x onerror=alert(1)>, 2 < 3",
            "price": "9.90",
            "ingredients": ["<i>cod</i>"],
        },
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["name"] == "Fish & Chips"
    assert product["description"] == "Crispy & hot, 2 < 3"
    assert product["ingredients"] == ["cod"]
    async with backend.runtime.sessionmaker() as session:
        row = await session.get(Product, product["id"])
        assert row is not None and row.name == "Fish & Chips"

    # Only markup: nothing left to store, so the field is refused, naming it.
    refused = await client.post(
        f"{API}/products",
        json={"restaurant_id": restaurant_id, "name": "<b></b><script>x</script>", "price": "1"},
        headers=admin.headers,
    )
    assert refused.status_code == 422
    assert [(e["field"], e["message"]) for e in refused.json()["errors"]] == [
        ("name", "Value error, must contain text, not only HTML markup")
    ]

    # The same rule for people's names and an order's note.
    hero = world["hero"]
    me = await client.patch(
        f"{API}/users/me",
        json={"full_name": "<a href='javascript:x'>Rocket</a>"},
        headers=hero.headers,
    )
    assert me.status_code == 200 and me.json()["full_name"] == "Rocket"
    order = await client.post(
        f"{API}/orders",
        json={
            "items": [{"product_id": product["id"], "quantity": 1}],
            "note": "<style>*{}</style>no onions <!-- hi -->",
        },
        headers=hero.headers,
    )
    assert order.status_code == 202, order.text
    async with backend.runtime.sessionmaker() as session:
        note = await session.scalar(select(Order.note).where(Order.id == order.json()["id"]))
    assert note == "no onions "


@pytest.mark.parametrize("payload", [*SCRIPT, "a & b", "x <3 y", "&amp;lt;b&amp;gt;"])
def test_stripped_text_holds_no_markup(payload: str) -> None:
    text = strip_html(payload)
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert strip_html(text) == text  # stripping twice changes nothing more
