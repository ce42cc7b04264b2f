"""Safe-for-me menus: the product list without what clashes with the signed-in customer's
allergies (options included) or with `exclude_allergens`, never shared through the cache."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from commissary.catalog.router import cache_key
from tests.conftest import MakeUser
from tests.test_catalog import API, make_product
from tests.test_options import Coffee, make_coffee

PRODUCTS = f"{API}/products"


async def coffee_menu(client: httpx.AsyncClient, make_user: MakeUser) -> Coffee:
    """The coffee shop, plus a cake with gluten and a latte that only comes with oat milk."""
    coffee = await make_coffee(client, make_user)
    owner = coffee.owner
    await make_product(client, owner, coffee.restaurant_id, name="Cake", allergens=["Gluten"])
    oat_latte = await make_product(client, owner, coffee.restaurant_id, name="Oat latte")
    response = await client.post(
        f"{PRODUCTS}/{oat_latte['id']}/option-groups",
        json={
            "name": "Milk",
            "min_choices": 1,
            "options": [{"name": "Oat", "allergens": ["gluten"]}],
        },
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    return coffee


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["items"]]


async def test_two_customers_get_their_own_safe_menu_never_from_the_cache(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await coffee_menu(client, make_user)
    gluten = await make_user(allergies=["gluten"])
    dairy = await make_user(allergies=["lactose", "soy", "GLUTEN"])
    everyone = await client.get(PRODUCTS)
    assert names(everyone) == ["Latte", "Espresso", "Cake", "Oat latte"]
    params = {"safe_for_me": "true"}
    for _ in range(2):
        mine = await client.get(PRODUCTS, params=params, headers=gluten.headers)
        # Soy or whole milk make the latte safe; the cake and the oat-only latte are not.
        assert names(mine) == ["Latte", "Espresso"]
        assert mine.json()["total"] == 2
        assert mine.headers["X-Cache"] == "miss"
        assert "no-store" in mine.headers["Cache-Control"]
        theirs = await client.get(PRODUCTS, params=params, headers=dairy.headers)
        # No milk is safe for them: the latte goes too.
        assert names(theirs) == ["Espresso"]
        assert theirs.headers["X-Cache"] == "miss"
    anonymous = await client.get(PRODUCTS, params=params)
    assert anonymous.status_code == 401
    encoded = await client.get(f"{PRODUCTS}?safe%5Ffor%5Fme=true")
    assert encoded.status_code == 401
    no = await client.get(PRODUCTS, params={"safe_for_me": "false"}, headers=gluten.headers)
    assert names(no) == names(everyone)


async def test_safe_for_me_combines_with_filters_and_pages(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await coffee_menu(client, make_user)
    gluten = await make_user(allergies=["gluten"])
    params = {"safe_for_me": "true", "sort": "-name", "limit": 1, "name__icontains": "t"}
    page = await client.get(PRODUCTS, params=params, headers=gluten.headers)
    assert names(page) == ["Latte"]
    assert page.json()["total"] == 1  # "Oat latte" has a "t" but no safe milk


async def test_excluded_allergens_hide_products_and_are_cached_per_query(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    coffee = await coffee_menu(client, make_user)
    url = f"{PRODUCTS}?exclude_allergens=gluten"
    first = await client.get(url)
    assert names(first) == ["Latte", "Espresso"]
    again = await client.get(url)
    assert (again.headers["X-Cache"], again.content) == ("hit", first.content)
    strict = await client.get(PRODUCTS, params={"exclude_allergens": "lactose, soy"})
    assert names(strict) == ["Latte", "Espresso", "Cake", "Oat latte"]  # oat milk is left
    # Out of oat milk: no milk avoids lactose and soy any more.
    oat = f"{PRODUCTS}/{coffee.latte}/options/{coffee.options['Oat']}"
    off = await client.patch(oat, json={"is_available": False}, headers=coffee.owner.headers)
    assert off.status_code == 200
    strict = await client.get(PRODUCTS, params={"exclude_allergens": "lactose,soy"})
    assert names(strict) == ["Espresso", "Cake", "Oat latte"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"safe_for_me": "maybe"}, "safe_for_me"),
        ({"exclude_allergens": ",".join(f"a{n}" for n in range(21))}, "exclude_allergens"),
        ({"exclude_allergens": "x" * 81}, "exclude_allergens"),
    ],
)
async def test_bad_safe_menu_parameters_are_refused_by_name(
    client: httpx.AsyncClient, make_user: MakeUser, params: dict[str, Any], parameter: str
) -> None:
    hero = await make_user()
    response = await client.get(PRODUCTS, params=params, headers=hero.headers)
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == parameter


def test_the_cache_never_keys_a_personal_menu() -> None:
    assert cache_key("/products", b"safe_for_me=true") is None
    assert cache_key("/products", b"limit=5&safe%5Ffor%5Fme=1") is None
    assert cache_key("/products", b"safe_for_me=") is None
    assert cache_key("/products", b"exclude_allergens=gluten") == (
        "/products?exclude_allergens=gluten"
    )
    assert cache_key("/products", b"name=100%25") == "/products?name=100%25"


async def test_the_list_declares_the_safe_menu_parameters(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    parameters = {p["name"]: p for p in document["paths"][PRODUCTS]["get"]["parameters"]}
    assert parameters["safe_for_me"]["schema"]["type"] == "boolean"
    assert parameters["exclude_allergens"]["schema"]["type"] == "array"
    assert "401" in document["paths"][PRODUCTS]["get"]["responses"]
