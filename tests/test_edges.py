"""Edges: hostile input that must stay a 4xx, abuse limits, and safety of the purge."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from structlog.testing import capture_logs

from commissary.core.mail import Mail, Mailer
from commissary.main import create_app
from commissary.models import KitchenMode, Role, User
from tests.conftest import Backend, MakeUser, make_settings
from tests.menu import add_waiter, make_menu
from tests.servers import Mailbox
from tests.test_orders import ORDERS, body


@pytest.mark.parametrize(
    "query",
    [
        {"total": "sNaN"},
        {"total__in": "1e999999999"},
        {"status__in": ",".join(["pending"] * 101)},
    ],
)
async def test_list_filters_at_the_edges_are_400(
    client: httpx.AsyncClient, make_user: MakeUser, query: dict[str, str]
) -> None:
    admin = await make_user(Role.ADMIN)
    response = await client.get(ORDERS, params=query, headers=admin.headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_query_parameter"


async def test_login_with_unencodable_text_is_a_plain_401(client: httpx.AsyncClient) -> None:
    form = await client.post(
        "/api/v1/auth/token", data={"username": "a\x00b@example.com", "password": "x"}
    )
    assert form.status_code == 401
    raw = await client.post(
        "/api/v1/auth/login",
        content=b'{"email":"\\ud800","password":"x"}',
        headers={"content-type": "application/json"},
    )
    assert raw.status_code == 422


async def test_resend_is_limited_per_address(
    client: httpx.AsyncClient, backend: Backend, mailbox: Mailbox, make_user: MakeUser
) -> None:
    hero = await make_user(verified=False)
    await backend.run_jobs()
    for _ in range(5):
        response = await client.post("/api/v1/auth/verify/resend", json={"email": hero.user.email})
        assert response.status_code == 202
    await backend.run_jobs()
    assert len(mailbox.to(hero.user.email)) == 1 + 3  # registration + three resends an hour


async def test_purge_spares_accounts_verified_once(
    backend: Backend, make_user: MakeUser, client: httpx.AsyncClient
) -> None:
    admin = await make_user(Role.ADMIN)
    fresh_out = await make_user(verified=False)
    unverified_by_admin = await make_user()
    response = await client.patch(
        f"/api/v1/users/{unverified_by_admin.user.id}",
        json={"is_verified": False},
        headers=admin.headers,
    )
    assert response.status_code == 200
    own = await client.patch(
        f"/api/v1/users/{admin.user.id}", json={"is_verified": False}, headers=admin.headers
    )
    assert own.json()["code"] == "cannot_modify_own_admin"
    async with backend.runtime.sessionmaker() as session:
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        await session.execute(update(User).values(created_at=old))
        await session.commit()
    await backend.run_job("users.purge_unverified")
    async with backend.runtime.sessionmaker() as session:
        left = set((await session.scalars(select(User.id))).all())
    assert fresh_out.user.id not in left
    assert {admin.user.id, unverified_by_admin.user.id} <= left


async def test_simulated_kitchen_readies_a_delivery_instead_of_completing_it(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend, kitchen_mode=KitchenMode.SIMULATED)
    hero = await make_user()
    placed = await client.post(
        ORDERS,
        json=body((menu.soup.id, 1), fulfillment="delivery", delivery_address="Deck 7"),
        headers=hero.headers,
    )
    await backend.settle()
    order = (await client.get(f"{ORDERS}/{placed.json()['id']}", headers=hero.headers)).json()
    assert order["status"] == "ready"


async def test_staff_cannot_order_for_a_deactivated_customer(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    waiter = await make_user(Role.WAITER)
    gone = await make_user(is_active=False)
    await add_waiter(backend, menu.restaurant.id, waiter.user.id)
    response = await client.post(
        ORDERS, json=body((menu.soup.id, 1), customer_id=gone.user.id), headers=waiter.headers
    )
    assert (response.status_code, response.json()["code"]) == (422, "unknown_customer")


async def test_an_unexpected_error_is_a_problem_500_with_request_id_and_headers(
    backend: Backend,
) -> None:
    app: FastAPI = create_app(backend.settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom: secret detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        response = await http.get("/boom", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "kaboom" not in response.text
    assert response.headers["x-request-id"] == "req-42"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_mail_body_is_never_logged_outside_development(
    backend: Backend,
) -> None:
    production = make_settings("sqlite://", None, 25, environment="production", smtp_host=None)
    with capture_logs() as logs:
        await Mailer(production).send(Mail("a@example.com", "code", "your code is 123456"))
    assert "123456" not in repr(logs)
    assert [line["event"] for line in logs] == ["mail_dropped_no_smtp_host"]
