"""Order placement's fast lane (``orders.lane``): a member's placement is served before
routing, with the route's answer, errors and side effects; whatever the lane does not serve
reaches the route as it was sent."""

from __future__ import annotations

import json
from typing import Any

import httpx
from structlog.testing import capture_logs

from commissary.models import Role
from commissary.orders import repository as repo
from commissary.orders.lane import PlacementLane
from commissary.users import repository as users_repo
from tests.conftest import Backend, MakeUser
from tests.menu import make_menu
from tests.test_metrics import scrape, value
from tests.test_orders import ORDERS, body, count_orders

# What processing does not change between the placement's answer and a later read.
STEADY = (
    "id",
    "restaurant_id",
    "customer_id",
    "customer_name",
    "waiter_id",
    "fulfillment",
    "delivery_address",
    "note",
    "items",
    "total",
    "currency",
    "order_time",
)


async def test_the_lanes_answer_is_the_routes(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    placed = await client.post(ORDERS, json=body((menu.soup.id, 2)), headers=hero.headers)
    assert placed.status_code == 202, placed.text
    assert placed.headers["content-type"] == "application/json"
    assert placed.headers["location"] == f"http://testserver{ORDERS}/{placed.json()['id']}"
    assert placed.headers["x-request-id"]
    assert placed.headers["cache-control"] == "no-store"
    read = await client.get(placed.headers["location"], headers=hero.headers)
    assert read.status_code == 200
    assert placed.json().keys() == read.json().keys()
    assert {k: placed.json()[k] for k in STEADY} == {k: read.json()[k] for k in STEADY}


async def test_an_invalid_order_reaches_the_route_and_its_field_errors(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    cases = {
        "extra field": ({**body((menu.soup.id, 1)), "tip": 5}, "tip"),
        "string quantity": (
            {"items": [{"product_id": menu.soup.id, "quantity": "2"}]},
            "items.0.quantity",
        ),
        "no items": ({"items": []}, "items"),
    }
    for name, (sent, field) in cases.items():
        answer = await client.post(ORDERS, json=sent, headers=hero.headers)
        assert answer.status_code == 422, name
        assert answer.json()["code"] == "validation_failed", name
        assert field in {e["field"] for e in answer.json()["errors"]}, name
    broken = await client.post(
        ORDERS,
        content=b'{"items": [',
        headers={**hero.headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    assert broken.json()["code"] == "validation_failed"
    assert await count_orders(backend) == 0


async def test_refusals_are_the_applications_problem_details(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    unverified = await make_user(verified=False)
    refused = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=unverified.headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "email_not_verified"
    assert refused.json()["instance"] == ORDERS
    forged = await client.post(
        ORDERS, json=body((menu.soup.id, 1)), headers={"Authorization": "Bearer not-a-token"}
    )
    assert forged.status_code == 401
    assert forged.headers["www-authenticate"] == "Bearer"
    anonymous = await client.post(ORDERS, json=body((menu.soup.id, 1)))
    assert anonymous.status_code == 401
    hero = await make_user()
    unknown = await client.post(ORDERS, json=body((987654, 1)), headers=hero.headers)
    assert unknown.status_code == 422
    assert unknown.json()["product_ids"] == [987654]
    assert await count_orders(backend) == 0


async def test_lane_placements_are_logged_and_counted_under_the_routes_template(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    menu = await make_menu(backend)
    hero = await make_user()
    labels = {"method": "POST", "route": ORDERS, "status": "202"}
    before = await scrape(client, admin.headers)
    with capture_logs() as logs:
        for _ in range(2):
            placed = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
            assert placed.status_code == 202
    after = await scrape(client, admin.headers)
    counter = "commissary_http_requests_total"
    assert value(after, counter, **labels) - value(before, counter, **labels) == 2
    lines = [e for e in logs if e["event"] == "request" and e["path"] == ORDERS]
    assert [line["status"] for line in lines] == [202, 202]
    assert await count_orders(backend) == 2


async def test_the_caller_and_the_menu_read_together_are_the_two_reads(
    backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    products = {menu.soup.id, menu.noodles.id, 987654}
    async with backend.runtime.statement_sessionmaker() as session:
        account, rows = await repo.caller_and_menu(session, hero.user.id, products)
        alone = await users_repo.member_row(session, hero.user.id)
        separately = await repo.menu_rows(session, products, hero.user.id)
        assert tuple(account) == tuple(alone)
        assert [r.id for r in rows] == [r.id for r in separately] == sorted(products - {987654})
        for field in separately[0]._fields:
            assert [getattr(r, field) for r in rows] == [getattr(r, field) for r in separately]
        account, rows = await repo.caller_and_menu(session, hero.user.id, {987654})
        assert tuple(account) == tuple(alone)
        assert list(rows) == []
        assert await repo.caller_and_menu(session, 987654, products) == (None, [])


async def test_a_client_gone_before_its_order_is_read_is_logged_499_and_nothing_written(
    backend: Backend, make_user: MakeUser
) -> None:
    await make_menu(backend)
    hero = await make_user()
    scope = placement_scope(backend, hero.headers["Authorization"])
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    with capture_logs() as logs:
        await backend.app(scope, receive, send)
    assert sent == []
    [line] = [e for e in logs if e["event"] == "request"]
    assert (line["path"], line["status"]) == (ORDERS, 499)
    assert await count_orders(backend) == 0


def placement_scope(
    backend: Backend, authorization: str | None, *extra: tuple[bytes, bytes]
) -> dict[str, Any]:
    """The ASGI scope of a ``POST /api/v1/orders`` with a JSON body."""
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json"), *extra]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": ORDERS,
        "raw_path": ORDERS.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
        "app": backend.app,
    }


async def test_the_lane_answers_a_members_order_and_hands_the_rest_to_the_route_as_sent(
    backend: Backend, make_user: MakeUser
) -> None:
    """The lane in front of a stand-in for the router: what it serves never reaches the
    route; what it does not reaches it with the body as the client sent it."""
    menu = await make_menu(backend)
    hero = await make_user()
    token = hero.headers["Authorization"]
    handed: list[bytes] = []

    async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
        handed.append((await receive())["body"])

    lane = PlacementLane(route)

    async def post(scope: dict[str, Any], payload: bytes) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await lane(scope, receive, send)
        return sent

    order = json.dumps(body((menu.soup.id, 1))).encode()
    served = await post(placement_scope(backend, token), order)
    assert served[0]["status"] == 202
    assert handed == []
    for name, scope, payload in [
        ("an API key", placement_scope(backend, None, (b"x-api-key", b"ck_x")), order),
        ("a retry key", placement_scope(backend, token, (b"idempotency-key", b"k1")), order),
        ("no bearer token", placement_scope(backend, None), order),
        ("an invalid order", placement_scope(backend, token), b'{"items": []}'),
        ("broken JSON", placement_scope(backend, token), b'{"items": ['),
    ]:
        handed.clear()
        assert await post(scope, payload) == [], name
        assert handed == [payload], name
    assert await count_orders(backend) == 1
