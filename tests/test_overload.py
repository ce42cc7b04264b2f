"""Overload and a lost database: a request that cannot get a connection in time, or meets a
connection the server closed, is a 503 the client may retry, and the API recovers by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Backend, MakeUser, another_api
from tests.menu import make_menu
from tests.servers import Mailbox
from tests.test_ops import assert_problem
from tests.test_options import item, make_coffee
from tests.test_orders import ORDERS, body


@pytest.fixture
async def small_pool(
    backend: Backend, smtp: tuple[int, Mailbox]
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A second API on the same PostgreSQL with one pooled connection and a short wait."""
    if backend.redis is None:
        pytest.skip("the connection pool is PostgreSQL's")
    async with another_api(
        backend, smtp[0], db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.3
    ) as api:
        yield api


async def test_a_request_that_waits_too_long_for_a_connection_is_a_503(
    small_pool: tuple[FastAPI, httpx.AsyncClient], make_user: MakeUser
) -> None:
    app, http = small_pool
    hero = await make_user()
    async with app.state.runtime.engine.connect() as held:  # the only pooled connection
        await held.execute(text("SELECT 1"))
        busy = await http.get("/api/v1/users/me", headers=hero.headers)
    body_ = assert_problem(busy, 503, "overloaded")
    assert busy.headers["Retry-After"] == "1"
    assert "retry" in str(body_["detail"]).lower()
    assert (await http.get("/api/v1/users/me", headers=hero.headers)).status_code == 200


async def test_connections_closed_by_the_server_cost_one_503_then_the_api_reconnects(
    small_pool: tuple[FastAPI, httpx.AsyncClient], backend: Backend, make_user: MakeUser
) -> None:
    app, http = small_pool
    menu = await make_menu(backend)
    hero = await make_user()
    assert (await http.get("/api/v1/users/me", headers=hero.headers)).status_code == 200
    async with app.state.runtime.engine.connect() as pooled:  # the pool's only connection
        pid = await pooled.scalar(text("SELECT pg_backend_pid()"))
    async with backend.runtime.engine.connect() as admin:  # what a PostgreSQL restart does
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    # The request that meets the dead connection (no pre-ping spends a round trip on every
    # checkout to find it earlier) is refused; nothing of it was written.
    first = await http.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
    assert_problem(first, 503, "database_unavailable")
    assert first.headers["Retry-After"] == "1"
    for _ in range(3):
        again = await http.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
        assert again.status_code == 202, again.text
    listed = (await http.get(ORDERS, headers=hero.headers)).json()
    assert listed["total"] == 3


async def test_a_placement_holds_one_connection_at_a_time(
    small_pool: tuple[FastAPI, httpx.AsyncClient], client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    """With a pool of one connection, every kind of placement is answered: the lean reads
    and the session's own (a drink's options, a refusal, a waiter's walk-in) take turns."""
    _, http = small_pool
    coffee = await make_coffee(client, make_user)
    hero = await make_user()
    o = coffee.options
    drink = {"items": [item(coffee.latte, 1, o["M"], o["Oat"])]}
    for _ in range(3):
        placed = await http.post(ORDERS, json=drink, headers=hero.headers)
        assert placed.status_code == 202, placed.text
    wrong_size = {"items": [item(coffee.latte, 1, o["M"], o["L"])]}
    refused = await http.post(ORDERS, json=wrong_size, headers=hero.headers)
    assert refused.status_code == 422, refused.text
    unknown = await http.post(ORDERS, json=body((987654, 1)), headers=hero.headers)
    assert unknown.status_code == 422, unknown.text
    walk_in = {**body((coffee.espresso, 1)), "customer_name": "Groot"}
    keyed = await http.post(ORDERS, json=walk_in, headers=coffee.owner.headers)
    assert keyed.status_code == 202, keyed.text
    listed = await http.get(ORDERS, headers=hero.headers)
    assert listed.json()["total"] == 3
