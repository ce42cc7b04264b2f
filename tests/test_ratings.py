"""Product ratings: one per customer and product, the product's average and count kept exact
(also under concurrent ratings), and the cached product read follows each change."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from commissary.catalog.ratings import average
from commissary.models import Role
from tests.conftest import Backend, MakeUser
from tests.menu import make_menu

PRODUCTS = "/api/v1/products"


def rating_of(product_id: int) -> str:
    return f"{PRODUCTS}/{product_id}/rating"


async def product(client: httpx.AsyncClient, product_id: int) -> dict[str, object]:
    response = await client.get(f"{PRODUCTS}/{product_id}")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_ratings_set_replace_and_withdraw_move_the_product_average(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    soup = menu.soup.id
    assert (await product(client, soup))["rating"] is None
    assert (await product(client, soup))["ratings_count"] == 0
    quill = await make_user(full_name="Peter Quill")
    gamora = await make_user(full_name="Gamora")

    first = await client.put(
        rating_of(soup), json={"score": 7, "comment": "warm"}, headers=quill.headers
    )
    assert first.status_code == 201, first.text
    assert first.json()["score"] == 7
    assert first.json()["author"] == "Peter"
    again = await client.put(rating_of(soup), json={"score": 9}, headers=quill.headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["comment"] == ""
    assert (await product(client, soup))["rating"] == 9.0

    await client.put(rating_of(soup), json={"score": 4}, headers=gamora.headers)
    shown = await product(client, soup)
    assert (shown["rating"], shown["ratings_count"]) == (6.5, 2)
    mine = await client.get(rating_of(soup), headers=gamora.headers)
    assert mine.json()["score"] == 4

    withdrawn = await client.delete(rating_of(soup), headers=quill.headers)
    assert withdrawn.status_code == 204
    shown = await product(client, soup)
    assert (shown["rating"], shown["ratings_count"]) == (4.0, 1)
    again_gone = await client.delete(rating_of(soup), headers=quill.headers)
    assert again_gone.status_code == 404
    assert again_gone.json()["code"] == "rating_not_found"
    assert (await client.get(rating_of(soup), headers=quill.headers)).status_code == 404


async def test_cached_product_read_shows_each_rating_change(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    url = f"{PRODUCTS}/{menu.cake.id}"
    await client.get(url)
    cached = await client.get(url)
    assert cached.headers["x-cache"] == "hit"
    await client.put(rating_of(menu.cake.id), json={"score": 3}, headers=hero.headers)
    after = await client.get(url)
    assert after.headers["x-cache"] == "miss"
    assert after.json()["rating"] == 3.0
    await client.get(url)
    await client.delete(rating_of(menu.cake.id), headers=hero.headers)
    assert (await client.get(url)).json()["rating"] is None


async def test_many_customers_rating_at_once_give_the_exact_average(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    heroes = [await make_user() for _ in range(24)]
    scores = [(i % 10) + 1 for i in range(len(heroes))]
    answers = await asyncio.gather(
        *(
            client.put(rating_of(menu.soup.id), json={"score": s}, headers=h.headers)
            for h, s in zip(heroes, scores, strict=True)
        )
    )
    assert [a.status_code for a in answers] == [201] * len(heroes)
    shown = await product(client, menu.soup.id)
    assert shown["ratings_count"] == len(heroes)
    assert shown["rating"] == float(average(sum(scores), len(scores)) or 0)


async def test_one_customer_rating_many_times_at_once_keeps_one_rating(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    answers = await asyncio.gather(
        *(
            client.put(rating_of(menu.soup.id), json={"score": s}, headers=hero.headers)
            for s in range(1, 11)
        )
    )
    assert sorted(a.status_code for a in answers) == [200] * 9 + [201]
    listed = (await client.get(f"{PRODUCTS}/{menu.soup.id}/ratings")).json()
    assert listed["total"] == 1
    shown = await product(client, menu.soup.id)
    assert shown["ratings_count"] == 1
    assert shown["rating"] == float(listed["items"][0]["score"])


async def test_only_verified_customers_rate_and_bad_scores_are_refused(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    owner = await make_user(Role.RESTAURATEUR)
    unverified = await make_user(verified=False)
    hero = await make_user()
    url = rating_of(menu.soup.id)
    staff = await client.put(url, json={"score": 5}, headers=owner.headers)
    assert (staff.status_code, staff.json()["code"]) == (403, "customers_only")
    early = await client.put(url, json={"score": 5}, headers=unverified.headers)
    assert (early.status_code, early.json()["code"]) == (403, "email_not_verified")
    assert (await client.put(url, json={"score": 5})).status_code == 401
    for bad in (0, 11, "7", 7.5, None, True):
        refused = await client.put(url, json={"score": bad}, headers=hero.headers)
        assert refused.status_code == 422, bad
        assert refused.json()["errors"][0]["field"] == "score"
    too_long = await client.put(url, json={"score": 5, "comment": "x" * 2001}, headers=hero.headers)
    assert too_long.status_code == 422
    missing = await client.put(rating_of(999_999), json={"score": 5}, headers=hero.headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "product_not_found")
    assert (await product(client, menu.soup.id))["ratings_count"] == 0


async def test_ratings_list_filters_sorts_and_hides_who_rated_beyond_a_first_name(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    for name, score, comment in (
        ("Rocket Raccoon", 2, "too dry"),
        ("Drax", 9, "literally delicious"),
        ("Mantis", 10, "I feel joy"),
    ):
        hero = await make_user(full_name=name)
        await client.put(
            rating_of(menu.soup.id), json={"score": score, "comment": comment}, headers=hero.headers
        )
    url = f"{PRODUCTS}/{menu.soup.id}/ratings"
    good = (await client.get(url, params={"score__gte": 9, "sort": "-score"})).json()
    assert [(r["author"], r["score"]) for r in good["items"]] == [("Mantis", 10), ("Drax", 9)]
    assert good["total"] == 2
    assert set(good["items"][0]) == {
        "id",
        "product_id",
        "score",
        "comment",
        "author",
        "created_at",
        "updated_at",
    }
    found = (await client.get(url, params={"search": "dry"})).json()
    assert [r["author"] for r in found["items"]] == ["Rocket"]
    refused = await client.get(url, params={"user_id": 1})
    assert refused.status_code == 400
    assert (await client.get(f"{PRODUCTS}/999999/ratings")).status_code == 404


async def test_products_sort_and_filter_by_rating(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    await client.put(rating_of(menu.cake.id), json={"score": 8}, headers=hero.headers)
    await client.put(rating_of(menu.soup.id), json={"score": 6}, headers=hero.headers)
    listed = (await client.get(PRODUCTS, params={"sort": "-rating,id"})).json()["items"]
    assert [p["id"] for p in listed] == [
        menu.cake.id,
        menu.soup.id,
        menu.noodles.id,
        menu.cheap.id,
    ]
    best = (await client.get(PRODUCTS, params={"rating__gte": "7"})).json()["items"]
    unrated = (await client.get(PRODUCTS, params={"rating__isnull": "true"})).json()["items"]
    assert {p["id"] for p in unrated} == {menu.noodles.id, menu.cheap.id}
    assert [p["id"] for p in best] == [menu.cake.id]


async def test_deleting_a_customer_withdraws_their_ratings_from_the_average(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    admin = await make_user(Role.ADMIN)
    harsh = await make_user()
    kind = await make_user()
    await client.put(rating_of(menu.soup.id), json={"score": 1}, headers=harsh.headers)
    await client.put(rating_of(menu.soup.id), json={"score": 9}, headers=kind.headers)
    assert (await product(client, menu.soup.id))["rating"] == 5.0
    gone = await client.delete(f"/api/v1/users/{harsh.user.id}", headers=admin.headers)
    assert gone.status_code == 204
    shown = await product(client, menu.soup.id)
    assert (shown["rating"], shown["ratings_count"]) == (9.0, 1)


@given(st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=200))
def test_average_is_the_mean_rounded_half_up_to_one_decimal(scores: list[int]) -> None:
    mean = Decimal(sum(scores)) / len(scores)
    shown = average(sum(scores), len(scores))
    assert shown is not None
    assert abs(shown - mean) <= Decimal("0.05")
    assert shown == shown.quantize(Decimal("0.1"))
    assert Decimal(1) <= shown <= Decimal(10)


def test_no_ratings_have_no_average() -> None:
    assert average(0, 0) is None


@pytest.mark.parametrize(
    ("total", "count", "shown"), [(13, 2, "6.5"), (1, 4, "0.3"), (2, 3, "0.7")]
)
def test_average_rounds_half_up(total: int, count: int, shown: str) -> None:
    assert average(total, count) == Decimal(shown)
