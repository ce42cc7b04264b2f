"""GET /info: the brand and the active locations with their hours, served from the menu
cache until a restaurant changes or a location opens or closes."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest

from commissary.core.cache import MemoryCache, RedisCache
from commissary.models import Role
from tests.conftest import Account, Backend, MakeUser
from tests.test_catalog import API, make_restaurant

PARIS_HOURS = {
    "mon": [{"open": "08:00", "close": "12:00"}, {"open": "14:00", "close": "18:00"}],
    "fri": [{"open": "20:00", "close": "02:00"}],
}


@pytest.fixture
async def admin(make_user: MakeUser) -> Account:
    return await make_user(Role.ADMIN)


async def test_info_shows_the_brand_and_each_active_location(
    client: httpx.AsyncClient, admin: Account, backend: Backend
) -> None:
    paris = await make_restaurant(
        client,
        admin,
        name="Bean There Paris",
        address="1 Rue du Café",
        phone="+33 1 23 45 67 89",
        timezone="Europe/Paris",
        opening_hours=PARIS_HOURS,
    )
    await make_restaurant(client, admin, name="Always Brewing")  # no hours: always open
    await make_restaurant(client, admin, name="Closed For Good", is_active=False)

    response = await client.get(f"{API}/info")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["brand"] == {
        "name": backend.settings.brand_name,
        "description": "",
        "email": None,
        "phone": None,
        "website": None,
    }
    always, shop = body["locations"]  # by name; the inactive one is left out
    assert always["name"] == "Always Brewing"
    assert always["is_open_now"] is True and always["next_change_at"] is None
    assert {k: shop[k] for k in ("id", "address", "phone", "timezone", "opening_hours")} == {
        "id": paris["id"],
        "address": "1 Rue du Café",
        "phone": "+33 1 23 45 67 89",
        "timezone": "Europe/Paris",
        "opening_hours": PARIS_HOURS,
    }
    assert shop["is_open_now"] == paris["is_open_now"]
    change = dt.datetime.fromisoformat(shop["next_change_at"])
    assert change.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))  # Paris time
    assert dt.datetime.now(dt.UTC) < change < dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
    assert change.strftime("%a %H:%M") in {
        "Mon 08:00",
        "Mon 12:00",
        "Mon 14:00",
        "Mon 18:00",
        "Fri 20:00",
        "Sat 02:00",
    }
    # Public, and carries the security headers of every answer.
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_info_is_cached_and_dropped_when_a_restaurant_changes(
    client: httpx.AsyncClient, admin: Account
) -> None:
    shop = await make_restaurant(client, admin, name="Bean There")
    first = await client.get(f"{API}/info")
    second = await client.get(f"{API}/info")
    assert second.headers["x-cache"] == "hit" and second.content == first.content

    patched = await client.patch(
        f"{API}/restaurants/{shop['id']}",
        json={"name": "Bean Here", "address": "2 Main St"},
        headers=admin.headers,
    )
    assert patched.status_code == 200, patched.text
    after = await client.get(f"{API}/info")
    assert after.headers["x-cache"] == "miss"
    assert [(s["name"], s["address"]) for s in after.json()["locations"]] == [
        ("Bean Here", "2 Main St")
    ]

    await client.patch(
        f"{API}/restaurants/{shop['id']}", json={"is_active": False}, headers=admin.headers
    )
    assert (await client.get(f"{API}/info")).json()["locations"] == []


async def cached_ttl(backend: Backend, key: str) -> float:
    """Seconds the cached answer under ``key`` has left to live."""
    cache = backend.runtime.cache
    if isinstance(cache, RedisCache):
        assert backend.runtime.redis is not None
        keys = await backend.runtime.redis.keys(f"{RedisCache.PREFIX}*:{key}")
        assert len(keys) == 1, keys
        return float(await backend.runtime.redis.pttl(keys[0])) / 1000
    assert isinstance(cache, MemoryCache)
    expires, _ = cache._entries[key]
    return expires - time.monotonic()


async def test_cached_info_lives_no_longer_than_the_next_opening_or_closing(
    client: httpx.AsyncClient, admin: Account, backend: Backend
) -> None:
    now = dt.datetime.now(dt.UTC)
    closing = now + dt.timedelta(minutes=2)
    span = {
        "open": (now - dt.timedelta(hours=1)).strftime("%H:%M"),
        "close": closing.strftime("%H:%M"),
    }
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    await make_restaurant(
        client, admin, name="Soon Closed", opening_hours={d: [span] for d in days}
    )

    body = (await client.get(f"{API}/info")).json()

    change = dt.datetime.fromisoformat(body["locations"][0]["next_change_at"])
    left = (change - dt.datetime.now(dt.UTC)).total_seconds()
    assert 0 < left <= 120
    # Far below CACHE_TTL: the answer is dropped when the shop closes, not minutes later.
    assert backend.settings.cache_ttl > 120
    assert 0 < await cached_ttl(backend, "/info") <= left + 1
