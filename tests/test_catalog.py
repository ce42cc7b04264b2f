"""The menu API: restaurants, categories and products, their permissions and validation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from commissary.models import AuditLog, Order, Role
from tests.conftest import Account, Backend, MakeUser

API = "/api/v1"


@pytest.fixture
async def admin(make_user: MakeUser) -> Account:
    return await make_user(Role.ADMIN)


@pytest.fixture
async def owner(make_user: MakeUser) -> Account:
    return await make_user(Role.RESTAURATEUR)


async def make_restaurant(
    client: httpx.AsyncClient, admin: Account, **fields: Any
) -> dict[str, Any]:
    body = {"name": "Knowhere Canteen", **fields}
    response = await client.post(f"{API}/restaurants", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def make_product(
    client: httpx.AsyncClient, account: Account, restaurant_id: int, **fields: Any
) -> dict[str, Any]:
    body = {"restaurant_id": restaurant_id, "name": "Star soup", "price": "12.50", **fields}
    response = await client.post(f"{API}/products", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def hours_around(now: dt.datetime, start: int, end: int) -> dict[str, Any]:
    """Every weekday open from ``now + start`` to ``now + end`` hours (UTC)."""
    span = {
        "open": (now + dt.timedelta(hours=start)).strftime("%H:%M"),
        "close": (now + dt.timedelta(hours=end)).strftime("%H:%M"),
    }
    return {day: [span] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


# Restaurants


async def test_admin_creates_restaurant_with_owners_and_a_derived_slug(
    client: httpx.AsyncClient, admin: Account, owner: Account
) -> None:
    hours = {"fri": [{"open": "22:00", "close": "02:00"}]}
    created = await make_restaurant(
        client,
        admin,
        name="Café Galáctico",
        owner_ids=[owner.user.id],
        timezone="Europe/Paris",
        opening_hours=hours,
        kitchen_mode="manual",
    )
    assert created["slug"] == "cafe-galactico"
    assert created["owner_ids"] == [owner.user.id]
    assert created["opening_hours"] == hours
    assert created["kitchen_mode"] == "manual"
    assert isinstance(created["is_open_now"], bool)
    public = await client.get(f"{API}/restaurants/{created['id']}")
    assert public.status_code == 200
    assert public.json() == created
    again = await make_restaurant(client, admin, name="Cafe galactico!")
    assert again["slug"] == "cafe-galactico-2"
    assert again["owner_ids"] == []
    assert again["is_open_now"] is True  # no hours: always open


async def test_is_open_now_follows_the_hours(client: httpx.AsyncClient, admin: Account) -> None:
    now = dt.datetime.now(dt.UTC)
    open_ = await make_restaurant(
        client, admin, name="Open", opening_hours=hours_around(now, -1, 1)
    )
    shut = await make_restaurant(client, admin, name="Shut", opening_hours=hours_around(now, 2, 3))
    assert open_["is_open_now"] is True
    assert shut["is_open_now"] is False


async def test_restaurant_owners_must_be_restaurateurs(
    client: httpx.AsyncClient, admin: Account, make_user: MakeUser
) -> None:
    customer = await make_user(Role.CUSTOMER)
    for bad_id in (customer.user.id, 987654):
        response = await client.post(
            f"{API}/restaurants", json={"name": "X", "owner_ids": [bad_id]}, headers=admin.headers
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_owner"
        assert str(bad_id) in response.json()["detail"]
        assert response.json()["errors"][0]["field"] == "owner_ids"
    assert (await client.get(f"{API}/restaurants")).json()["total"] == 0


async def test_only_admins_create_restaurants(
    client: httpx.AsyncClient, owner: Account, make_user: MakeUser
) -> None:
    customer = await make_user(Role.CUSTOMER)
    body = {"name": "Mine"}
    for headers, expected in ((owner.headers, 403), (customer.headers, 403), ({}, 401)):
        response = await client.post(f"{API}/restaurants", json=body, headers=headers)
        assert response.status_code == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "America"),
        ("slug", "Bad Slug"),
        ("slug", "trailing-"),
        ("slug", "a" * 81),
        ("name", ""),
        ("kitchen_mode", "robotic"),
        ("opening_hours", {"fri": [{"open": "22:00", "close": "22:00"}]}),
        ("opening_hours", {"funday": []}),
        ("opening_hours", {"mon": [{"open": "24:00", "close": "02:00"}]}),
        ("opening_hours", {"mon": [{"open": "08:00", "close": "09:00"}] * 7}),
        ("colour", "red"),
    ],
)
async def test_restaurant_bad_input_names_the_field(
    client: httpx.AsyncClient, admin: Account, field: str, value: object
) -> None:
    body = {"name": "Valid", field: value}
    response = await client.post(f"{API}/restaurants", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert any(e["field"].split(".")[0] == field for e in response.json()["errors"])


async def test_taken_slug_is_409(client: httpx.AsyncClient, admin: Account) -> None:
    first = await make_restaurant(client, admin, slug="groot-grill")
    other = await make_restaurant(client, admin, name="Other")
    taken = await client.post(
        f"{API}/restaurants", json={"name": "Y", "slug": "groot-grill"}, headers=admin.headers
    )
    assert taken.status_code == 409
    assert taken.json()["code"] == "slug_taken"
    renamed = await client.patch(
        f"{API}/restaurants/{other['id']}", json={"slug": first["slug"]}, headers=admin.headers
    )
    assert renamed.status_code == 409
    assert renamed.json()["code"] == "slug_taken"


async def test_owner_edits_own_restaurant_only(
    client: httpx.AsyncClient, admin: Account, owner: Account, make_user: MakeUser
) -> None:
    stranger = await make_user(Role.RESTAURATEUR)
    customer = await make_user(Role.CUSTOMER)
    made = await make_restaurant(client, admin, owner_ids=[owner.user.id])
    url = f"{API}/restaurants/{made['id']}"
    mine = await client.patch(url, json={"description": "Fresh"}, headers=owner.headers)
    assert mine.status_code == 200
    assert mine.json()["description"] == "Fresh"
    assert mine.json()["updated_at"] >= made["updated_at"]
    for headers, expected in ((stranger.headers, 403), (customer.headers, 403), ({}, 401)):
        assert (
            await client.patch(url, json={"name": "Z"}, headers=headers)
        ).status_code == expected
        assert (await client.delete(url, headers=headers)).status_code == expected
    same_owners = {"owner_ids": [owner.user.id]}
    assert (await client.patch(url, json=same_owners, headers=owner.headers)).status_code == 200
    grab = await client.patch(url, json={"owner_ids": [stranger.user.id]}, headers=owner.headers)
    assert grab.status_code == 403
    assert grab.json()["code"] == "owner_change_forbidden"
    both = {"owner_ids": [stranger.user.id, owner.user.id]}
    by_admin = await client.patch(url, json=both, headers=admin.headers)
    assert by_admin.status_code == 200
    assert by_admin.json()["owner_ids"] == sorted(both["owner_ids"])


async def test_put_replaces_fields_and_keeps_omitted_owners(
    client: httpx.AsyncClient, admin: Account, owner: Account
) -> None:
    made = await make_restaurant(
        client, admin, owner_ids=[owner.user.id], description="Old", phone="+1 555"
    )
    body = {"name": "Renamed", "slug": "renamed", "timezone": "Asia/Tokyo"}
    response = await client.put(f"{API}/restaurants/{made['id']}", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert (replaced["name"], replaced["slug"], replaced["timezone"]) == (
        "Renamed",
        "renamed",
        "Asia/Tokyo",
    )
    assert replaced["description"] == replaced["phone"] == ""
    assert replaced["owner_ids"] == [owner.user.id]


async def test_patch_with_null_for_a_required_field_is_422(
    client: httpx.AsyncClient, admin: Account
) -> None:
    made = await make_restaurant(client, admin)
    response = await client.patch(
        f"{API}/restaurants/{made['id']}", json={"name": None}, headers=admin.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"


async def test_list_restaurants_filters_sorts_searches_and_pages(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await make_restaurant(client, admin, name="Alpha Diner", description="pancakes")
    await make_restaurant(client, admin, name="Beta Bistro", kitchen_mode="manual")
    await make_restaurant(client, admin, name="Gamma Grill", is_active=False)

    async def names(**params: Any) -> list[str]:
        response = await client.get(f"{API}/restaurants", params=params)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["items"]]

    assert await names() == ["Alpha Diner", "Beta Bistro", "Gamma Grill"]
    assert await names(is_active="false") == ["Gamma Grill"]
    assert await names(kitchen_mode="manual") == ["Beta Bistro"]
    assert await names(name__icontains="BISTRO") == ["Beta Bistro"]
    assert await names(search="pancake") == ["Alpha Diner"]
    assert await names(sort="-name", limit=2, offset=1) == ["Beta Bistro", "Alpha Diner"]
    page = (await client.get(f"{API}/restaurants", params={"limit": 1})).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 0)
    for params, code in (
        ({"owner": "1"}, "unknown_filter"),
        ({"sort": "phone"}, "unknown_sort_field"),
        ({"is_active": "maybe"}, "invalid_query_parameter"),
    ):
        bad = await client.get(f"{API}/restaurants", params=params)
        assert bad.status_code == 400
        assert bad.json()["code"] == code


async def test_deleting_a_restaurant_deletes_its_products(
    client: httpx.AsyncClient, admin: Account, owner: Account, backend: Backend
) -> None:
    made = await make_restaurant(client, admin, owner_ids=[owner.user.id])
    product = await make_product(client, owner, made["id"])
    response = await client.delete(f"{API}/restaurants/{made['id']}", headers=owner.headers)
    assert response.status_code == 204
    assert (await client.get(f"{API}/restaurants/{made['id']}")).status_code == 404
    assert (await client.get(f"{API}/products/{product['id']}")).status_code == 404
    async with backend.runtime.sessionmaker() as session:
        actions = (await session.scalars(select(AuditLog.action).order_by(AuditLog.id))).all()
    assert list(actions[-3:]) == ["restaurant.create", "product.create", "restaurant.delete"]


async def test_restaurant_with_orders_cannot_be_deleted(
    client: httpx.AsyncClient, admin: Account, backend: Backend
) -> None:
    made = await make_restaurant(client, admin)
    async with backend.runtime.sessionmaker() as session:
        session.add(
            Order(
                restaurant_id=made["id"],
                customer_name="Drax",
                total=Decimal("9.00"),
                currency="EUR",
            )
        )
        await session.commit()
    response = await client.delete(f"{API}/restaurants/{made['id']}", headers=admin.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "restaurant_has_orders"
    assert "is_active=false" in response.json()["detail"]
    assert (await client.get(f"{API}/restaurants/{made['id']}")).status_code == 200


async def test_unknown_restaurant_is_404(client: httpx.AsyncClient, admin: Account) -> None:
    assert (await client.get(f"{API}/restaurants/424242")).json()["code"] == (
        "restaurant_not_found"
    )
    huge = await client.get(f"{API}/restaurants/{2**70}")
    assert huge.status_code == 422


# Categories


async def test_category_crud_by_a_restaurateur(
    client: httpx.AsyncClient, admin: Account, owner: Account
) -> None:
    url = f"{API}/categories"
    for name, position in (("Soups", 2), ("Desserts", 1), ("Drinks", 1)):
        body = {"name": name, "position": position, "description": f"All {name.lower()}"}
        created = await client.post(url, json=body, headers=owner.headers)
        assert created.status_code == 201, created.text
    listed = (await client.get(url)).json()
    assert [c["name"] for c in listed["items"]] == ["Desserts", "Drinks", "Soups"]
    soups = listed["items"][2]
    assert (await client.get(f"{url}/{soups['id']}")).json() == soups
    put = await client.put(f"{url}/{soups['id']}", json={"name": "Broths"}, headers=owner.headers)
    assert put.status_code == 200
    assert (put.json()["name"], put.json()["position"], put.json()["description"]) == (
        "Broths",
        0,
        "",
    )
    patched = await client.patch(
        f"{url}/{soups['id']}", json={"position": 9}, headers=admin.headers
    )
    assert (patched.json()["name"], patched.json()["position"]) == ("Broths", 9)
    restaurant = await make_restaurant(client, admin)
    product = await make_product(client, admin, restaurant["id"], category_id=soups["id"])
    assert (await client.delete(f"{url}/{soups['id']}", headers=owner.headers)).status_code == 204
    assert (await client.get(f"{url}/{soups['id']}")).json()["code"] == "category_not_found"
    kept = await client.get(f"{API}/products/{product['id']}")
    assert kept.json()["category_id"] is None


async def test_category_names_are_unique_regardless_of_case(
    client: httpx.AsyncClient, owner: Account
) -> None:
    url = f"{API}/categories"
    await client.post(url, json={"name": "Snacks"}, headers=owner.headers)
    other = (await client.post(url, json={"name": "Mains"}, headers=owner.headers)).json()
    dup = await client.post(url, json={"name": "SNACKS"}, headers=owner.headers)
    assert dup.status_code == 409
    assert dup.json()["code"] == "category_name_taken"
    rename = await client.patch(
        f"{url}/{other['id']}", json={"name": "snacks"}, headers=owner.headers
    )
    assert rename.status_code == 409
    assert rename.json()["code"] == "category_name_taken"


async def test_category_writes_need_a_menu_role(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    customer = await make_user(Role.CUSTOMER)
    url = f"{API}/categories"
    assert (await client.post(url, json={"name": "X"}, headers=customer.headers)).status_code == 403
    assert (await client.post(url, json={"name": "X"})).status_code == 401
    assert (await client.get(url)).status_code == 200
    for body in ({"name": "X", "position": -1}, {"name": ""}, {"name": "X", "icon": "y"}):
        admin = await make_user(Role.ADMIN)
        response = await client.post(url, json=body, headers=admin.headers)
        assert response.status_code == 422, body


# Products


async def test_product_crud_by_its_restaurateur(
    client: httpx.AsyncClient, admin: Account, owner: Account
) -> None:
    restaurant = await make_restaurant(client, admin, owner_ids=[owner.user.id])
    product = await make_product(
        client,
        owner,
        restaurant["id"],
        ingredients=[" Tomato", "tomato ", "Basil"],
        allergens=["Gluten", "GLUTEN"],
        origin="Xandar",
    )
    assert product["price"] == "12.50"
    assert product["currency"] == "EUR"
    assert product["ingredients"] == ["Tomato", "Basil"]
    assert product["allergens"] == ["Gluten"]
    url = f"{API}/products/{product['id']}"
    assert (await client.get(url)).json() == product
    patched = await client.patch(
        url, json={"price": 9.9, "is_available": False}, headers=owner.headers
    )
    assert patched.status_code == 200
    assert (patched.json()["price"], patched.json()["is_available"]) == ("9.90", False)
    body = {"restaurant_id": restaurant["id"], "name": "Moon pie", "price": "3"}
    put = (await client.put(url, json=body, headers=owner.headers)).json()
    assert (put["name"], put["price"], put["origin"], put["ingredients"]) == (
        "Moon pie",
        "3.00",
        None,
        [],
    )
    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert (await client.get(url)).json()["code"] == "product_not_found"


async def test_prices_are_exact_strings(
    client: httpx.AsyncClient, admin: Account, backend: Backend
) -> None:
    restaurant = await make_restaurant(client, admin)
    dime = await make_product(client, admin, restaurant["id"], name="Dime", price="0.10")
    twenty = await make_product(client, admin, restaurant["id"], name="Twenty", price=0.2)
    assert (dime["price"], twenty["price"]) == ("0.10", "0.20")
    assert Decimal(dime["price"]) + Decimal(twenty["price"]) == Decimal("0.30")
    listed = await client.get(f"{API}/products", params={"price__lte": "0.2", "sort": "-price"})
    assert [p["price"] for p in listed.json()["items"]] == ["0.20", "0.10"]
    biggest = await make_product(client, admin, restaurant["id"], price="100000")
    assert biggest["price"] == "100000.00"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", -1),
        ("price", 0),
        ("price", "12.345"),
        ("price", 12.345),
        ("price", "100000.01"),
        ("price", "twelve"),
        ("price", None),
        ("currency", "eur"),
        ("currency", "EURO"),
        ("name", ""),
        ("name", "n" * 121),
        ("name", "nul\x00byte"),
        ("description", "d" * 2001),
        ("origin", "o" * 81),
        ("ingredients", ["x"] * 51),
        ("allergens", ["a" * 65]),
        ("allergens", [" "]),
        ("calories", 500),
    ],
)
async def test_product_bad_input_names_the_field(
    client: httpx.AsyncClient, admin: Account, field: str, value: object
) -> None:
    restaurant = await make_restaurant(client, admin)
    body = {"restaurant_id": restaurant["id"], "name": "Soup", "price": "1.00", field: value}
    response = await client.post(f"{API}/products", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert any(e["field"].split(".")[0] == field for e in response.json()["errors"])
    assert (await client.get(f"{API}/products")).json()["total"] == 0


async def test_product_references_must_exist(client: httpx.AsyncClient, admin: Account) -> None:
    restaurant = await make_restaurant(client, admin)
    for body, code, field in (
        ({"restaurant_id": 99999}, "unknown_restaurant", "restaurant_id"),
        (
            {"restaurant_id": restaurant["id"], "category_id": 99999},
            "unknown_category",
            "category_id",
        ),
    ):
        response = await client.post(
            f"{API}/products", json={"name": "Soup", "price": "1", **body}, headers=admin.headers
        )
        assert response.status_code == 422
        assert response.json()["code"] == code
        assert response.json()["errors"][0]["field"] == field


async def test_product_writes_need_the_restaurant(
    client: httpx.AsyncClient, admin: Account, owner: Account, make_user: MakeUser
) -> None:
    stranger = await make_user(Role.RESTAURATEUR)
    customer = await make_user(Role.CUSTOMER)
    mine = await make_restaurant(client, admin, name="Mine", owner_ids=[owner.user.id])
    also_mine = await make_restaurant(client, admin, name="Also", owner_ids=[owner.user.id])
    theirs = await make_restaurant(client, admin, name="Theirs", owner_ids=[stranger.user.id])
    product = await make_product(client, owner, mine["id"])
    url = f"{API}/products/{product['id']}"
    body = {"restaurant_id": mine["id"], "name": "Soup", "price": "1"}
    for headers, expected in ((stranger.headers, 403), (customer.headers, 403), ({}, 401)):
        assert (await client.post(f"{API}/products", json=body, headers=headers)).status_code == (
            expected
        )
        assert (
            await client.patch(url, json={"name": "X"}, headers=headers)
        ).status_code == expected
        assert (await client.delete(url, headers=headers)).status_code == expected
    move_away = await client.patch(url, json={"restaurant_id": theirs["id"]}, headers=owner.headers)
    assert move_away.status_code == 403
    assert move_away.json()["code"] == "not_restaurant_owner"
    moved = await client.patch(url, json={"restaurant_id": also_mine["id"]}, headers=owner.headers)
    assert moved.status_code == 200
    assert moved.json()["restaurant_id"] == also_mine["id"]
    by_admin = await client.patch(url, json={"restaurant_id": theirs["id"]}, headers=admin.headers)
    assert by_admin.status_code == 200
    assert (await client.get(f"{API}/products")).status_code == 200


async def test_list_products_filters_sorts_and_pages(
    client: httpx.AsyncClient, admin: Account
) -> None:
    one = (await make_restaurant(client, admin, name="One"))["id"]
    two = (await make_restaurant(client, admin, name="Two"))["id"]
    category = await client.post(f"{API}/categories", json={"name": "Soups"}, headers=admin.headers)
    soups = category.json()["id"]
    await make_product(client, admin, one, name="Star soup", price="4.00", category_id=soups)
    await make_product(client, admin, one, name="Comet cake", price="7.50", origin="Titan")
    await make_product(client, admin, two, name="Nebula tea", price="2.25", currency="USD")
    await make_product(client, admin, two, name="Void bread", price="3.10", is_available=False)

    async def names(**params: Any) -> list[str]:
        response = await client.get(f"{API}/products", params=params)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["items"]]

    assert await names(restaurant_id=one) == ["Star soup", "Comet cake"]
    assert await names(category_id=soups) == ["Star soup"]
    assert await names(category_id__isnull="true", sort="name") == [
        "Comet cake",
        "Nebula tea",
        "Void bread",
    ]
    assert await names(is_available="false") == ["Void bread"]
    assert await names(price__gt="3.10", price__lte="7.5", sort="price") == [
        "Star soup",
        "Comet cake",
    ]
    assert await names(name__icontains="SOUP") == ["Star soup"]
    assert await names(origin="Titan") == ["Comet cake"]
    assert await names(currency="USD") == ["Nebula tea"]
    assert await names(search="titan") == ["Comet cake"]
    assert await names(sort="-price", limit=2, offset=1) == ["Star soup", "Void bread"]
    assert (await client.get(f"{API}/products", params={"limit": 2})).json()["total"] == 4
    for params, code in (
        ({"calories__lt": "3"}, "unknown_filter"),
        ({"name__lt": "b"}, "unknown_filter_operator"),
        ({"price": "cheap"}, "invalid_query_parameter"),
        ({"name__icontains": "soup\x00"}, "invalid_query_parameter"),
        ({"restaurant_id": str(2**70)}, "invalid_query_parameter"),
        ({"sort": "description"}, "unknown_sort_field"),
        ({"limit": "101"}, "invalid_query_parameter"),
    ):
        bad = await client.get(f"{API}/products", params=params)
        assert bad.status_code == 400, params
        assert bad.json()["code"] == code
