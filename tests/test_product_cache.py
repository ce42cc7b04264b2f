"""The menu cache: public menu answers served from Redis (PostgreSQL backend) or from the
process (embedded default), the same bytes as uncached, and dropped after every write that
changes them, including writes made while Redis was away."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from commissary.catalog import answers
from commissary.catalog import service as catalog
from commissary.catalog.router import cache_key
from commissary.catalog.schemas import ProductUpdate
from commissary.core.cache import (
    DisabledCache,
    MemoryCache,
    RedisCache,
    create_cache,
    invalidate_menu,
)
from commissary.core.db import commit, rollback
from commissary.core.runtime import Runtime
from commissary.models import Restaurant, Role
from tests.conftest import Account, Backend, MakeUser, make_settings
from tests.test_catalog import API, hours_around, make_product, make_restaurant


@pytest.fixture
async def admin(make_user: MakeUser) -> Account:
    return await make_user(Role.ADMIN)


async def warm(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """Read ``url`` until it is served from the cache; the cached answer."""
    first = await client.get(url)
    assert first.status_code == 200, first.text
    cached = await client.get(url)
    assert cached.headers["X-Cache"] == "hit", url
    assert cached.content == first.content
    return cached


async def test_a_hit_is_the_same_bytes_as_the_uncached_answer(
    client: httpx.AsyncClient, admin: Account
) -> None:
    place = await make_restaurant(client, admin)
    created = await client.post(
        f"{API}/products",
        json={"restaurant_id": place["id"], "name": "Soupe étoilée", "price": "7.5"},
        headers=admin.headers,
    )
    url = f"{API}/products/{created.json()['id']}"
    miss = await client.get(url)
    hit = await client.get(url)
    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("miss", "hit")
    assert miss.content == hit.content == created.content  # the create went through FastAPI
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["content-length"] == str(len(created.content))
    assert hit.headers["X-Content-Type-Options"] == "nosniff"
    assert hit.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "path",
    [
        "/products?limit=20",
        "/products?restaurant_id={rid}&sort=-price",
        "/categories",
        "/categories/{cid}",
        "/restaurants",
        "/restaurants/{rid}",
    ],
)
async def test_menu_reads_are_cached_as_their_writes_answered_them(
    client: httpx.AsyncClient, admin: Account, path: str
) -> None:
    place = await make_restaurant(client, admin)
    kind = await client.post(f"{API}/categories", json={"name": "Soups"}, headers=admin.headers)
    soup = await make_product(client, admin, place["id"], category_id=kind.json()["id"])
    cake = await make_product(client, admin, place["id"], name="Moon cake", price="3.10")
    written = {
        ("restaurants", place["id"]): place,
        ("categories", kind.json()["id"]): kind.json(),
        ("products", soup["id"]): soup,
        ("products", cake["id"]): cake,
    }
    cached = await warm(client, API + path.format(rid=place["id"], cid=kind.json()["id"]))
    assert cached.headers["content-type"] == "application/json"
    answer = cached.json()
    items = answer.get("items", [answer])
    collection = path.split("/")[1].split("?")[0]
    assert {item["id"] for item in items} == {i for c, i in written if c == collection}
    for item in items:
        assert item == written[collection, item["id"]]


async def test_the_endpoint_and_the_fast_path_share_their_keys(
    client: httpx.AsyncClient, admin: Account
) -> None:
    """``/products/01`` is not answered before routing; its endpoint finds the answer that
    ``/products/1`` stored, and the other way round."""
    place = await make_restaurant(client, admin)
    product = await make_product(client, admin, place["id"])
    canonical, padded = f"{API}/products/{product['id']}", f"{API}/products/0{product['id']}"
    stored = await client.get(padded)
    assert stored.headers["X-Cache"] == "miss"
    through_fast_path = await client.get(canonical)
    through_endpoint = await client.get(padded)
    assert through_fast_path.headers["X-Cache"] == through_endpoint.headers["X-Cache"] == "hit"
    assert through_fast_path.content == through_endpoint.content == stored.content


async def test_the_same_answer_for_everyone(
    client: httpx.AsyncClient, admin: Account, make_user: MakeUser
) -> None:
    place = await make_restaurant(client, admin)
    product = await make_product(client, admin, place["id"])
    url = f"{API}/products/{product['id']}"
    anonymous = await warm(client, url)
    hero = await make_user(Role.CUSTOMER, allergies=["carrot"])
    signed_in = await client.get(url, headers=hero.headers)
    assert signed_in.headers["X-Cache"] == "hit"
    assert signed_in.content == anonymous.content
    assert signed_in.headers["Cache-Control"] == "no-store"


async def test_errors_are_not_cached(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        missing = await client.get(f"{API}/products/424242")
        assert missing.status_code == 404
        assert "X-Cache" not in missing.headers
        bad = await client.get(f"{API}/products?colour=red")
        assert bad.status_code == 400
        assert "X-Cache" not in bad.headers


# Each write that changes an answer drops it before the writer gets its response.

Write = Callable[[httpx.AsyncClient, Account, dict[str, Any]], Awaitable[None]]


async def _ok(response: httpx.Response) -> None:
    assert response.status_code in (200, 201, 204), response.text


def _patch(kind: str, body: dict[str, Any]) -> Write:
    async def write(client: httpx.AsyncClient, admin: Account, ids: dict[str, Any]) -> None:
        await _ok(await client.patch(f"{API}/{kind}/{ids[kind]}", json=body, headers=admin.headers))

    return write


async def _replace_product(client: httpx.AsyncClient, admin: Account, ids: dict[str, Any]) -> None:
    body = {"restaurant_id": ids["restaurants"], "name": "Replaced", "price": "1.00"}
    await _ok(
        await client.put(f"{API}/products/{ids['products']}", json=body, headers=admin.headers)
    )


async def _create_product(client: httpx.AsyncClient, admin: Account, ids: dict[str, Any]) -> None:
    await make_product(client, admin, ids["restaurants"], name="Newcomer")


async def _delete(
    kind: str, client: httpx.AsyncClient, admin: Account, ids: dict[str, Any]
) -> None:
    await _ok(await client.delete(f"{API}/{kind}/{ids[kind]}", headers=admin.headers))


async def _delete_product(client: httpx.AsyncClient, admin: Account, ids: dict[str, Any]) -> None:
    await _delete("products", client, admin, ids)


async def _delete_category(client: httpx.AsyncClient, admin: Account, ids: dict[str, Any]) -> None:
    await _delete("categories", client, admin, ids)


async def _delete_restaurant(
    client: httpx.AsyncClient, admin: Account, ids: dict[str, Any]
) -> None:
    await _delete("restaurants", client, admin, ids)


async def _close_now(client: httpx.AsyncClient, admin: Account, ids: dict[str, Any]) -> None:
    hours = hours_around(dt.datetime.now(dt.UTC), 2, 3)
    await _patch("restaurants", {"opening_hours": hours})(client, admin, ids)


WRITES: dict[str, tuple[Write, str]] = {
    "product update": (_patch("products", {"price": "99.90"}), "/products/{products}"),
    "product replace": (_replace_product, "/products/{products}"),
    "product create": (_create_product, "/products?restaurant_id={restaurants}"),
    "product delete": (_delete_product, "/products/{products}"),
    "product delete, list": (_delete_product, "/products"),
    "category update": (_patch("categories", {"name": "Broths"}), "/categories/{categories}"),
    "category update, list": (_patch("categories", {"position": 7}), "/categories"),
    "category delete": (_delete_category, "/products/{products}"),
    "restaurant update": (_patch("restaurants", {"name": "Renamed"}), "/restaurants/{restaurants}"),
    "restaurant update, list": (_patch("restaurants", {"is_active": False}), "/restaurants"),
    "opening hours": (_close_now, "/restaurants/{restaurants}"),
    "restaurant delete": (_delete_restaurant, "/products/{products}"),
}


@pytest.mark.parametrize("name", list(WRITES))
async def test_a_write_drops_what_it_changes(
    client: httpx.AsyncClient, admin: Account, name: str
) -> None:
    write, path = WRITES[name]
    place = await make_restaurant(client, admin)
    kind = await client.post(f"{API}/categories", json={"name": "Soups"}, headers=admin.headers)
    product = await make_product(client, admin, place["id"], category_id=kind.json()["id"])
    ids = {"restaurants": place["id"], "categories": kind.json()["id"], "products": product["id"]}
    url = API + path.format(**ids)
    before = await warm(client, url)
    await write(client, admin, ids)
    after = await client.get(url)
    assert after.headers.get("X-Cache") != "hit"
    assert (after.status_code, after.content) != (before.status_code, before.content)
    if after.status_code == 200:
        assert (await client.get(url)).headers["X-Cache"] == "hit"  # and it is cached again


# Writes to a product's option groups and options change the product's answer.

OPTION_WRITES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "option group create": ("POST", "/option-groups", {"name": "Lid"}),
    "option group update": ("PATCH", "/option-groups/{group}", {"max_choices": 2}),
    "option group delete": ("DELETE", "/option-groups/{group}", None),
    "option create": ("POST", "/option-groups/{group}/options", {"name": "L"}),
    "option update": ("PATCH", "/options/{option}", {"price_delta": "0.70"}),
    "option delete": ("DELETE", "/options/{option}", None),
}


@pytest.mark.parametrize("name", list(OPTION_WRITES))
@pytest.mark.parametrize("read", ["/products/{product}", "/products?restaurant_id={restaurant}"])
async def test_an_option_write_drops_the_products_answers(
    client: httpx.AsyncClient, admin: Account, name: str, read: str
) -> None:
    method, path, body = OPTION_WRITES[name]
    place = await make_restaurant(client, admin)
    product = await make_product(client, admin, place["id"])
    group = await client.post(
        f"{API}/products/{product['id']}/option-groups",
        json={"name": "Size", "options": [{"name": "S"}, {"name": "M", "price_delta": "0.50"}]},
        headers=admin.headers,
    )
    assert group.status_code == 201, group.text
    ids = {
        "product": product["id"],
        "restaurant": place["id"],
        "group": group.json()["id"],
        "option": group.json()["options"][1]["id"],
    }
    url = API + read.format(**ids)
    before = await warm(client, url)
    assert "Size" in before.text
    target = f"{API}/products/{product['id']}" + path.format(**ids)
    await _ok(await client.request(method, target, json=body, headers=admin.headers))
    after = await client.get(url)
    assert after.headers["X-Cache"] == "miss"
    assert after.content != before.content


async def test_deleting_an_owner_drops_its_restaurants(
    client: httpx.AsyncClient, admin: Account, make_user: MakeUser
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    place = await make_restaurant(client, admin, owner_ids=[owner.user.id])
    url = f"{API}/restaurants/{place['id']}"
    assert (await warm(client, url)).json()["owner_ids"] == [owner.user.id]
    gone = await client.delete(f"{API}/users/{owner.user.id}", headers=admin.headers)
    assert gone.status_code == 204
    assert (await client.get(url)).json()["owner_ids"] == []


async def test_a_rolled_back_write_keeps_the_cache(
    client: httpx.AsyncClient, backend: Backend, admin: Account
) -> None:
    place = await make_restaurant(client, admin)
    url = f"{API}/restaurants/{place['id']}"
    await warm(client, url)
    async with backend.runtime.sessionmaker() as session:
        invalidate_menu(session)
        await rollback(session)
    assert (await client.get(url)).headers["X-Cache"] == "hit"
    async with backend.runtime.sessionmaker() as session:
        invalidate_menu(session)
        invalidate_menu(session)  # twice in one transaction: one effect
        assert len(session.info["after_commit"]) == 1
        await commit(session)
    assert (await client.get(url)).headers["X-Cache"] == "miss"


async def test_an_answer_read_before_a_write_is_never_stored_after_it(backend: Backend) -> None:
    """The race the generation closes: a reader looks up (miss), a write commits and
    invalidates, then the reader stores what it read before the write."""
    cache = backend.runtime.cache
    looked_up = await cache.lookup("/products/1")
    assert looked_up.body is None
    assert looked_up.generation is not None
    await cache.invalidate()
    await cache.store("/products/1", looked_up.generation, b'{"stale":true}', 60)
    assert (await cache.lookup("/products/1")).body is None
    fresh = await cache.lookup("/products/1")
    assert fresh.generation is not None
    await cache.store("/products/1", fresh.generation, b'{"fresh":true}', 60)
    assert (await cache.lookup("/products/1")).body == b'{"fresh":true}'


async def test_a_write_from_another_process_drops_the_cache(
    client: httpx.AsyncClient, backend: Backend, admin: Account
) -> None:
    """The command line changes a meal while the API serves it: Redis is shared, and on the
    embedded default the write signals through a file beside the database."""
    place = await make_restaurant(client, admin)
    product = await make_product(client, admin, place["id"])
    url = f"{API}/products/{product['id']}"
    await warm(client, url)
    other = Runtime.create(backend.settings)
    try:
        async with other.sessionmaker() as session:
            change = ProductUpdate(name="Renamed elsewhere")
            await catalog.update_product(session, product["id"], change, admin.user)
            await commit(session)
    finally:
        await other.close()
    after = await client.get(url)
    assert after.headers["X-Cache"] == "miss"
    assert after.json()["name"] == "Renamed elsewhere"


# Redis away


async def test_reads_and_writes_work_while_redis_is_stopped_and_nothing_stale_survives(
    client: httpx.AsyncClient, backend: Backend, admin: Account
) -> None:
    if backend.redis is None:
        pytest.skip("the embedded default caches in process")
    place = await make_restaurant(client, admin)
    product = await make_product(client, admin, place["id"])
    url = f"{API}/products/{product['id']}"
    cached = await warm(client, url)
    backend.redis.stop()
    try:
        with capture_logs() as logs:
            down = [await client.get(url) for _ in range(3)]
            changed = await client.patch(url, json={"price": "3.30"}, headers=admin.headers)
    finally:
        backend.redis.start()
    assert [r.status_code for r in down] == [200, 200, 200]
    assert {r.headers["X-Cache"] for r in down} == {"miss"}
    assert all(r.content == cached.content for r in down)
    assert changed.status_code == 200
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["menu_cache_unreachable"]
    back = await client.get(url)
    assert back.json()["price"] == "3.30"
    assert (await client.get(url)).headers["X-Cache"] == "hit"


async def test_a_write_whose_invalidation_failed_is_not_hidden_by_the_cache(
    client: httpx.AsyncClient, backend: Backend, admin: Account
) -> None:
    """Redis keeps its data but refuses writes for a while (``CLIENT PAUSE WRITE``): the
    write commits, its invalidation fails; the answers cached before it must not come back
    once Redis does."""
    if backend.redis is None:
        pytest.skip("the embedded default caches in process")
    redis = backend.runtime.redis
    assert redis is not None
    place = await make_restaurant(client, admin)
    product = await make_product(client, admin, place["id"])
    url = f"{API}/products/{product['id']}"
    await warm(client, url)
    await redis.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")
    try:
        changed = await client.patch(url, json={"name": "Changed"}, headers=admin.headers)
    finally:
        await redis.execute_command("CLIENT", "UNPAUSE")
    assert changed.status_code == 200
    after = await client.get(url)
    assert after.json()["name"] == "Changed"
    assert after.headers["X-Cache"] == "miss"


def test_the_fast_path_knows_the_keys_of_the_menu_reads_only() -> None:
    assert cache_key("/products/12", b"") == "/products/12"
    assert cache_key("/restaurants/3", b"x=1") == "/restaurants/3"
    assert cache_key("/products", b"limit=20") == "/products?limit=20"
    assert cache_key("/categories", b"") == "/categories?"
    assert cache_key("/products", b"search=" + b"x" * 300).startswith("/products#")
    for other in ("/products/012", "/products/0", "/products/1x", "/products/", "/orders/1"):
        assert cache_key(other, b"") is None, other
    assert cache_key(f"/products/{2**63}", b"") is None
    assert cache_key("/products/\u0661", b"") is None  # an Arabic-Indic digit one


def test_an_answer_with_opening_hours_lives_until_the_next_minute() -> None:
    started = dt.datetime.now(dt.UTC)
    always, sometimes = Restaurant(opening_hours={}), Restaurant(opening_hours={"mon": []})
    assert answers._while_open_now_holds([always], started) is None
    ttl = answers._while_open_now_holds([always, sometimes], started)
    next_minute = started.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    assert ttl is not None
    assert 0 < ttl <= (next_minute - started).total_seconds()


async def test_the_in_process_cache_keeps_the_most_recent_answers_within_its_size() -> None:
    cache = MemoryCache(max_bytes=10)
    generation = (await cache.lookup("a")).generation
    assert generation is not None
    for key in ("a", "b"):
        await cache.store(key, generation, b"1234", 60)
    assert (await cache.lookup("a")).body == b"1234"  # now the most recent
    await cache.store("c", generation, b"5678", 60)
    assert [(await cache.lookup(k)).body for k in ("a", "b", "c")] == [b"1234", None, b"5678"]
    await cache.store("huge", generation, b"x" * 11, 60)
    assert (await cache.lookup("huge")).body is None


async def test_the_backend_follows_the_settings(tmp_path: Path) -> None:
    sqlite = f"sqlite+aiosqlite:///{tmp_path}/menu.db"
    embedded = make_settings(sqlite, None, 25)
    assert isinstance(create_cache(embedded), MemoryCache)
    redis = create_cache(make_settings(sqlite, "redis://127.0.0.1:1/0", 25))
    assert isinstance(redis, RedisCache)
    await redis.close()
    off = make_settings(sqlite, "redis://127.0.0.1:1/0", 25, cache_enabled=False)
    assert isinstance(create_cache(off), DisabledCache)
