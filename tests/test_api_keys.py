"""Integrators' API keys: created, listed and revoked by developers, the secret shown once and
stored hashed; a key reaches only the routes its scopes name, acting as its owner; each key
has its own rate limit and daily quota (429 with `Retry-After` and `RateLimit-*`), and its
usage is counted."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from structlog.testing import capture_logs

from commissary.apikeys.scopes import KeyScope, declared_scope, require_scope
from commissary.apikeys.usage import UsageRecorder
from commissary.models import ApiKey, ApiKeyUsage, AuditLog, Role
from tests.conftest import Account, Backend, MakeUser
from tests.menu import make_menu

KEYS = "/api/v1/api-keys"
ALL_SCOPES = [scope.value for scope in KeyScope]


@pytest.fixture(autouse=True)
async def _write_usage(backend: Backend) -> Any:
    """Counts of this test's keys are written before the tables are emptied."""
    yield
    await recorder(backend).flush()


def recorder(backend: Backend) -> UsageRecorder:
    found: UsageRecorder = backend.app.state.api_key_usage
    return found


async def create_key(
    client: httpx.AsyncClient, owner: Account, scopes: list[str], **extra: Any
) -> dict[str, Any]:
    body = {"name": "shop sync", "scopes": scopes, **extra}
    response = await client.post(KEYS, json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def with_key(created: dict[str, Any]) -> dict[str, str]:
    return {"X-API-Key": str(created["secret"])}


async def test_developer_creates_lists_and_revokes_a_key_whose_secret_is_shown_once(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    dev = await make_user(Role.DEVELOPER)
    created = await create_key(client, dev, ["catalog:read", "orders:read", "catalog:read"])
    secret = created["secret"]
    assert secret.startswith("cmk_live_") and len(secret) == len("cmk_live_") + 43
    assert created["prefix"] == secret[:15]
    assert created["scopes"] == ["catalog:read", "orders:read"]
    assert created["rate_limit_per_minute"] == backend.settings.api_key_rate_limit_per_minute
    assert created["daily_quota"] == backend.settings.api_key_daily_quota
    async with backend.runtime.sessionmaker() as session:
        row = await session.scalar(select(ApiKey))
        audit = list(await session.scalars(select(AuditLog)))
    assert row is not None
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr([getattr(row, c.key) for c in ApiKey.__table__.columns])
    assert secret not in repr([(a.action, a.data) for a in audit])

    listed = await client.get(KEYS, headers=dev.headers)
    assert listed.status_code == 200
    assert listed.json()["total"] == 1
    item = listed.json()["items"][0]
    assert "secret" not in item and secret not in listed.text
    assert item["prefix"] == created["prefix"] and item["revoked_at"] is None
    one = await client.get(f"{KEYS}/{created['id']}", headers=dev.headers)
    assert one.status_code == 200
    assert secret not in one.text

    assert (await client.get("/api/v1/products", headers=with_key(created))).status_code == 200
    revoked = await client.delete(f"{KEYS}/{created['id']}", headers=dev.headers)
    assert revoked.status_code == 204
    refused = await client.get("/api/v1/products", headers=with_key(created))
    assert refused.status_code == 401
    assert refused.json()["code"] == "api_key_revoked"
    again = await client.delete(f"{KEYS}/{created['id']}", headers=dev.headers)
    assert again.status_code == 204
    live = await client.get(KEYS, params={"revoked_at__isnull": "true"}, headers=dev.headers)
    assert live.json()["total"] == 0
    assert (await client.get(KEYS, headers=dev.headers)).json()["items"][0]["revoked_at"]


async def test_only_developers_and_admins_hold_keys(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    for role in (Role.CUSTOMER, Role.SALES, Role.RESTAURATEUR):
        member = await make_user(role)
        body = {"name": "mine", "scopes": ["catalog:read"]}
        assert (await client.post(KEYS, json=body, headers=member.headers)).status_code == 403
        assert (await client.get(KEYS, headers=member.headers)).status_code == 403
    admin = await make_user(Role.ADMIN)
    await create_key(client, admin, ["orders:read"])
    assert (await client.post(KEYS, json={"name": "x", "scopes": []})).status_code == 401


async def test_another_members_key_is_not_found(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner, other = await make_user(Role.DEVELOPER), await make_user(Role.DEVELOPER)
    created = await create_key(client, owner, ["catalog:read"])
    path = f"{KEYS}/{created['id']}"

    for method in ("GET", "DELETE"):
        response = await client.request(method, path, headers=other.headers)
        assert response.status_code == 404, method
        assert response.json()["code"] == "api_key_not_found"
    assert (await client.get(KEYS, headers=other.headers)).json()["total"] == 0
    assert (await client.get(path, headers=owner.headers)).json()["revoked_at"] is None


async def test_limits_above_their_caps_and_bad_scopes_are_refused(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    dev = await make_user(Role.DEVELOPER)
    cap = backend.settings.api_key_max_rate_limit_per_minute
    too_fast = {"name": "x", "scopes": ["catalog:read"], "rate_limit_per_minute": cap + 1}
    refused = await client.post(KEYS, json=too_fast, headers=dev.headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "rate_limit_per_minute"
    quota = backend.settings.api_key_max_daily_quota + 1
    too_many = {"name": "x", "scopes": ["catalog:read"], "daily_quota": quota}
    assert (await client.post(KEYS, json=too_many, headers=dev.headers)).status_code == 422
    for scopes in ([], ["admin:all"], "catalog:read"):
        body = {"name": "x", "scopes": scopes}
        assert (await client.post(KEYS, json=body, headers=dev.headers)).status_code == 422
    assert (await client.get(KEYS, headers=dev.headers)).json()["total"] == 0


async def test_scopes_are_enforced_per_route_group(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    admin = await make_user(Role.ADMIN)
    catalog = with_key(await create_key(client, admin, ["catalog:read"]))
    reader = with_key(await create_key(client, admin, ["orders:read"]))
    writer = with_key(await create_key(client, admin, ["orders:read", "orders:write"]))
    product = f"/api/v1/products/{menu.soup.id}"
    assert (await client.get(product)).status_code == 200  # now in the menu cache
    order = {"items": [{"product_id": menu.soup.id, "quantity": 1}], "customer_name": "Drax"}

    assert (await client.get(product, headers=catalog)).status_code == 200
    assert (await client.get("/api/v1/restaurants", headers=catalog)).status_code == 200
    assert (await client.get("/api/v1/info", headers=catalog)).status_code == 200
    for method, path, body in (
        ("GET", "/api/v1/orders", None),
        ("POST", "/api/v1/orders", order),
    ):
        response = await client.request(method, path, json=body, headers=catalog)
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "insufficient_scope"
    # A public, cached read still needs the scope when a key is sent.
    cached = await client.get(product, headers=reader)
    assert cached.status_code == 403
    assert cached.json()["scope"] == "catalog:read"
    assert (await client.post("/api/v1/orders", json=order, headers=reader)).status_code == 403

    placed = await client.post("/api/v1/orders", json=order, headers=writer)
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]
    listed = await client.get("/api/v1/orders", headers=reader)
    assert [o["id"] for o in listed.json()["items"]] == [order_id]
    assert (await client.get(f"/api/v1/orders/{order_id}", headers=reader)).status_code == 200
    events = await client.get(f"/api/v1/orders/{order_id}/events", headers=reader)
    assert events.status_code == 200
    cancel = f"/api/v1/orders/{order_id}/cancel"
    assert (await client.post(cancel, headers=reader)).status_code == 403
    cancelled = await client.post(cancel, headers=writer)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"


async def test_a_key_never_reaches_account_key_or_admin_routes_even_with_every_scope(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    admin = await make_user(Role.ADMIN)
    dev = await make_user(Role.DEVELOPER)
    created = await create_key(client, admin, ALL_SCOPES)
    headers = with_key(created)
    refused = [
        ("GET", "/api/v1/users/me", None),
        ("GET", "/api/v1/users", None),
        ("DELETE", f"/api/v1/users/{dev.user.id}", None),
        ("GET", KEYS, None),
        ("POST", KEYS, {"name": "more", "scopes": ALL_SCOPES}),
        ("DELETE", f"{KEYS}/{created['id']}", None),
        ("POST", "/api/v1/restaurants", {"name": "Knowhere", "slug": "knowhere"}),
        ("PATCH", f"/api/v1/products/{menu.soup.id}", {"name": "Cold soup"}),
        ("POST", "/api/v1/ws-tickets", None),
        ("GET", "/api/v1/cart", None),
        ("GET", "/ready", None),
    ]
    for method, path, body in refused:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["code"] == "api_key_not_allowed"
    assert (await client.get(f"/api/v1/users/{dev.user.id}", headers=admin.headers)).is_success
    assert (await client.get(f"{KEYS}/{created['id']}", headers=admin.headers)).json()[
        "revoked_at"
    ] is None


async def test_a_developer_key_acts_with_its_owners_role(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    dev = await make_user(Role.DEVELOPER)
    headers = with_key(await create_key(client, dev, ALL_SCOPES))
    mine = await client.post(
        "/api/v1/orders",
        json={"items": [{"product_id": menu.soup.id, "quantity": 1}]},
        headers=hero.headers,
    )
    assert mine.status_code == 202

    order = {"items": [{"product_id": menu.soup.id, "quantity": 1}], "customer_name": "Drax"}
    placed = await client.post("/api/v1/orders", json=order, headers=headers)
    assert placed.status_code == 403  # no restaurant granted to this integrator
    assert placed.json()["code"] == "not_restaurant_staff"
    assert (await client.get("/api/v1/orders", headers=headers)).json()["total"] == 0
    order_id = mine.json()["id"]
    assert (await client.get(f"/api/v1/orders/{order_id}", headers=headers)).status_code == 404
    assert (
        await client.post(f"/api/v1/orders/{order_id}/cancel", headers=headers)
    ).status_code == 404


async def test_unknown_malformed_or_doubled_credentials_are_refused(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    dev = await make_user(Role.DEVELOPER)
    created = await create_key(client, dev, ["catalog:read"])
    forged = "cmk_live_" + "A" * 43
    for raw in (forged, "nonsense", created["secret"][:-1]):
        response = await client.get("/api/v1/products", headers={"X-API-Key": raw})
        assert response.status_code == 401, raw
        assert response.json()["code"] == "invalid_api_key"
    both = await client.get("/api/v1/products", headers={**with_key(created), **dev.headers})
    assert both.status_code == 401
    assert both.json()["code"] == "ambiguous_credentials"


async def test_a_disabled_owner_or_a_lost_role_stops_the_key(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    dev = await make_user(Role.DEVELOPER)
    headers = with_key(await create_key(client, dev, ["catalog:read"]))
    assert (await client.get("/api/v1/products", headers=headers)).status_code == 200

    demoted = await client.patch(
        f"/api/v1/users/{dev.user.id}", json={"role": "customer"}, headers=admin.headers
    )
    assert demoted.status_code == 200, demoted.text
    refused = await client.get("/api/v1/products", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_api_key"


def limit_headers(response: httpx.Response) -> tuple[str, str, str]:
    return (
        response.headers["RateLimit-Limit"],
        response.headers["RateLimit-Remaining"],
        response.headers["RateLimit-Reset"],
    )


async def test_the_rate_limit_answers_429_with_retry_after_and_ratelimit_headers(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    dev = await make_user(Role.DEVELOPER)
    limited = with_key(await create_key(client, dev, ["catalog:read"], rate_limit_per_minute=3))
    other = with_key(await create_key(client, dev, ["catalog:read"]))

    for remaining in ("2", "1", "0"):
        ok = await client.get("/api/v1/restaurants", headers=limited)
        assert ok.status_code == 200
        limit, left, reset = limit_headers(ok)
        assert (limit, left) == ("3", remaining)
        assert 1 <= int(reset) <= 60
        assert ok.headers["RateLimit-Policy"].startswith("3;w=60")
    refused = await client.get("/api/v1/restaurants", headers=limited)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert limit_headers(refused)[:2] == ("3", "0")
    # Limits are per key: the owner's other key and a signed-in request are unaffected.
    assert (await client.get("/api/v1/restaurants", headers=other)).status_code == 200
    signed_in = await client.get("/api/v1/restaurants", headers=dev.headers)
    assert signed_in.status_code == 200
    assert "RateLimit-Limit" not in signed_in.headers


async def test_the_daily_quota_answers_429_until_the_next_utc_day(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    dev = await make_user(Role.DEVELOPER)
    created = await create_key(client, dev, ["catalog:read"], daily_quota=2)
    headers = with_key(created)

    first = await client.get("/api/v1/restaurants", headers=headers)
    assert limit_headers(first)[:2] == ("2", "1")  # the quota is nearer its end than the minute
    assert (await client.get("/api/v1/restaurants", headers=headers)).status_code == 200
    refused = await client.get("/api/v1/restaurants", headers=headers)
    assert refused.status_code == 429
    assert refused.json()["code"] == "quota_exceeded"
    assert 1 <= int(refused.headers["Retry-After"]) <= 86400
    assert limit_headers(refused)[:2] == ("2", "0")
    # Refused requests are counted as refused, not against the quota.
    usage = (await client.get(f"{KEYS}/{created['id']}", headers=dev.headers)).json()["usage"]
    assert (usage["today"], usage["refused_today"], usage["quota_remaining"]) == (2, 1, 0)


async def test_usage_is_counted_and_written_once(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    dev = await make_user(Role.DEVELOPER)
    created = await create_key(client, dev, ["catalog:read"], rate_limit_per_minute=4)
    headers, path = with_key(created), f"{KEYS}/{created['id']}"
    for _ in range(3):
        assert (await client.get("/api/v1/restaurants", headers=headers)).status_code == 200
    refused = await client.get("/api/v1/orders", headers=headers)  # counted, then refused: 403
    assert refused.status_code == 403
    assert (await client.get("/api/v1/restaurants", headers=headers)).status_code == 429

    before = (await client.get(path, headers=dev.headers)).json()
    assert before["last_used_at"] is None  # not written yet
    usage = before["usage"]
    assert (usage["today"], usage["refused_today"], usage["total"]) == (4, 1, 4)
    await recorder(backend).flush()
    after = (await client.get(path, headers=dev.headers)).json()
    assert after["usage"] == usage
    assert after["last_used_at"] is not None
    async with backend.runtime.sessionmaker() as session:
        rows = list(await session.scalars(select(ApiKeyUsage)))
    assert [(r.request_count, r.refused_count) for r in rows] == [(4, 1)]
    await recorder(backend).flush()  # nothing left to add
    assert (await client.get(path, headers=dev.headers)).json()["usage"] == usage


async def test_the_key_is_never_logged(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    dev = await make_user(Role.DEVELOPER)
    with capture_logs() as logs:
        created = await create_key(client, dev, ["catalog:read"])
        for _ in range(2):
            await client.get("/api/v1/users/me", headers=with_key(created))
        await client.delete(f"{KEYS}/{created['id']}", headers=dev.headers)
        await client.get("/api/v1/products", headers=with_key(created))
        await recorder(backend).flush()
    assert logs
    assert created["secret"] not in repr(logs)


EXPECTED_SCOPES = {
    ("GET", "/api/v1/restaurants"): KeyScope.CATALOG_READ,
    ("GET", "/api/v1/restaurants/{restaurant_id}"): KeyScope.CATALOG_READ,
    ("GET", "/api/v1/categories"): KeyScope.CATALOG_READ,
    ("GET", "/api/v1/categories/{category_id}"): KeyScope.CATALOG_READ,
    ("GET", "/api/v1/products"): KeyScope.CATALOG_READ,
    ("GET", "/api/v1/products/{product_id}"): KeyScope.CATALOG_READ,
    ("GET", "/api/v1/products/{product_id}/option-groups"): KeyScope.CATALOG_READ,
    ("GET", "/api/v1/products/{product_id}/option-groups/{group_id}"): KeyScope.CATALOG_READ,
    ("GET", "/api/v1/products/{product_id}/options/{option_id}"): KeyScope.CATALOG_READ,
    ("GET", "/api/v1/products/{product_id}/ratings"): KeyScope.CATALOG_READ,
    ("GET", "/api/v1/info"): KeyScope.CATALOG_READ,
    ("GET", "/api/v1/orders"): KeyScope.ORDERS_READ,
    ("GET", "/api/v1/orders/{order_id}"): KeyScope.ORDERS_READ,
    ("GET", "/api/v1/orders/{order_id}/events"): KeyScope.ORDERS_READ,
    ("POST", "/api/v1/orders"): KeyScope.ORDERS_WRITE,
    ("POST", "/api/v1/orders/{order_id}/cancel"): KeyScope.ORDERS_WRITE,
}


async def test_only_the_declared_routes_take_a_key(backend: Backend) -> None:
    """The whole surface a key can reach; any route added without a scope refuses keys."""
    from fastapi.routing import APIRoute, iter_route_contexts

    found = {}
    for context in iter_route_contexts(backend.app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        scope = declared_scope(route)
        if scope is None or scope is KeyScope.WEBHOOKS_WRITE:
            continue
        path = (context.path_format or "").replace(":int}", "}")
        for method in route.methods:
            found[method, path] = scope
    assert found == EXPECTED_SCOPES


async def test_the_openapi_document_declares_the_api_key_scheme(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    paths = document["paths"]
    place = paths["/api/v1/orders"]["post"]
    assert {"ApiKey": []} in place["security"] and {"OAuth2PasswordBearer": []} in place["security"]
    assert "429" in place["responses"]
    menu = paths["/api/v1/restaurants"]["get"]
    assert menu["security"][0] == {} and {"ApiKey": []} in menu["security"]
    me = paths["/api/v1/users/me"]["get"]
    assert {"ApiKey": []} not in me["security"]
    for operation in paths["/api/v1/api-keys"].values():
        assert {"ApiKey": []} not in operation["security"]


async def test_a_request_without_a_key_costs_no_key_statement(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    """Placement is the hot path: signed in, the gate reads nothing; with a key, the key
    costs one lookup."""
    menu = await make_menu(backend)
    admin = await make_user(Role.ADMIN)
    headers = with_key(await create_key(client, admin, ["orders:write"]))
    order = {"items": [{"product_id": menu.soup.id, "quantity": 1}], "customer_name": "Drax"}
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def place(headers: dict[str, str]) -> list[str]:
        statements.clear()
        event.listen(backend.runtime.engine.sync_engine, "before_cursor_execute", count)
        try:
            response = await client.post("/api/v1/orders", json=order, headers=headers)
        finally:
            event.remove(backend.runtime.engine.sync_engine, "before_cursor_execute", count)
        assert response.status_code == 202, response.text
        return [s for s in statements if "api_key" in s]

    assert await place(admin.headers) == []
    assert len(await place(headers)) == 1


def test_a_route_declares_its_scope_by_enum_or_name() -> None:
    from fastapi import APIRouter

    router = APIRouter()

    @router.post("/webhooks", dependencies=[require_scope("webhooks:write")])
    async def subscribe() -> None: ...

    @router.get("/webhooks", dependencies=[require_scope(KeyScope.WEBHOOKS_WRITE)])
    async def list_subscriptions() -> None: ...

    @router.get("/private")
    async def private() -> None: ...

    assert [declared_scope(route) for route in router.routes] == [
        KeyScope.WEBHOOKS_WRITE,
        KeyScope.WEBHOOKS_WRITE,
        None,
    ]
    with pytest.raises(ValueError, match="admin:all"):
        require_scope("admin:all")


async def test_an_integrator_reaches_the_orders_of_the_restaurants_granted_to_them(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    granted = await make_menu(backend)
    other = await make_menu(backend, slug="elsewhere")
    hero, admin = await make_user(), await make_user(Role.ADMIN)
    dev = await make_user(Role.DEVELOPER)
    grant = await client.patch(
        f"/api/v1/users/{dev.user.id}",
        json={"restaurant_ids": [granted.restaurant.id]},
        headers=admin.headers,
    )
    assert grant.status_code == 200, grant.text
    assert grant.json()["restaurant_ids"] == [granted.restaurant.id]
    theirs = []
    for menu in (granted, other):
        placed = await client.post(
            "/api/v1/orders",
            json={"items": [{"product_id": menu.soup.id, "quantity": 1}]},
            headers=hero.headers,
        )
        assert placed.status_code == 202
        theirs.append(placed.json()["id"])
    reader = with_key(await create_key(client, dev, ["orders:read"]))
    writer = with_key(await create_key(client, dev, ["orders:write"]))

    listed = (await client.get("/api/v1/orders", headers=reader)).json()
    assert [o["id"] for o in listed["items"]] == [theirs[0]]
    assert (await client.get(f"/api/v1/orders/{theirs[1]}", headers=reader)).status_code == 404

    walk_in = {"customer_name": "Mantis", "allergies": ["gluten"]}
    here = {"items": [{"product_id": granted.soup.id, "quantity": 2}], **walk_in}
    placed = await client.post("/api/v1/orders", json=here, headers=writer)
    assert placed.status_code == 202, placed.text
    assert placed.json()["customer_name"] == "Mantis"
    there = {"items": [{"product_id": other.soup.id, "quantity": 1}], **walk_in}
    refused = await client.post("/api/v1/orders", json=there, headers=writer)
    assert refused.status_code == 403 and refused.json()["code"] == "not_restaurant_staff"
    listed = (await client.get("/api/v1/orders", headers=reader)).json()
    assert sorted(o["id"] for o in listed["items"]) == [theirs[0], placed.json()["id"]]

    # A customer belongs to no restaurant.
    refused = await client.patch(
        f"/api/v1/users/{hero.user.id}",
        json={"restaurant_ids": [granted.restaurant.id]},
        headers=admin.headers,
    )
    assert refused.status_code == 422
