"""Abuse limits: failed logins and registrations per client address, body sizes, and the
client address itself, which only a trusted proxy may state (a real nginx with the shipped
configuration in front of a real `commissary serve`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from sqlalchemy import func, select

from commissary.models import User
from tests.conftest import PASSWORD, Backend, MakeUser
from tests.servers import Mailbox

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "commissary.conf.template"
MiB = 1024 * 1024


def client_at(backend: Backend, host: str) -> httpx.AsyncClient:
    """A client whose requests reach the app from ``host``, as a server would report it."""
    transport = httpx.ASGITransport(app=backend.app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def users_count(backend: Backend) -> int:
    async with backend.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


def register_body(n: int) -> dict[str, str]:
    return {"email": f"hero{n}@example.com", "password": "fresh-start-9", "full_name": f"H {n}"}


# --- logins ---------------------------------------------------------------------------------


async def test_successful_logins_from_one_address_are_never_limited(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    """A restaurant's waiters all sign in from the restaurant's one address."""
    waiters = [await make_user() for _ in range(3)]
    attempts = backend.settings.login_max_failures_per_client + 3
    statuses = []
    for n in range(attempts):
        waiter = waiters[n % len(waiters)]
        response = await client.post(
            "/api/v1/auth/login", json={"email": waiter.user.email, "password": PASSWORD}
        )
        statuses.append(response.status_code)
    assert statuses == [200] * attempts


async def test_failed_logins_are_limited_per_client_even_for_a_right_password(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    limit = backend.settings.login_max_failures_per_client
    for n in range(limit):
        response = await client.post(
            "/api/v1/auth/login", json={"email": f"u{n}@example.com", "password": "wrong-1"}
        )
        assert response.status_code == 401, n
    account = await make_user()

    blocked = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert blocked.headers["content-type"] == "application/problem+json"
    assert blocked.json()["code"] == "rate_limited"
    assert int(blocked.headers["retry-after"]) > 0

    async with client_at(backend, "198.51.100.7") as elsewhere:
        fine = await elsewhere.post(
            "/api/v1/auth/login", json={"email": account.user.email, "password": PASSWORD}
        )
    assert fine.status_code == 200


# --- registrations --------------------------------------------------------------------------


async def test_registrations_are_limited_per_client_with_retry_after(
    client: httpx.AsyncClient, backend: Backend, mailbox: Mailbox
) -> None:
    limit = backend.settings.register_max_per_client
    for n in range(limit):
        created = await client.post("/api/v1/auth/register", json=register_body(n))
        assert created.status_code == 201, created.text
    await backend.settle()
    mails = len(mailbox.messages)

    refused = await client.post("/api/v1/auth/register", json=register_body(limit))
    await backend.settle()

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert 0 < int(refused.headers["retry-after"]) <= backend.settings.register_client_window
    assert await users_count(backend) == limit
    assert len(mailbox.messages) == mails
    async with client_at(backend, "198.51.100.8") as elsewhere:
        other = await elsewhere.post("/api/v1/auth/register", json=register_body(limit + 1))
    assert other.status_code == 201


# --- body sizes -----------------------------------------------------------------------------


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "body_too_large"
    assert "x-request-id" in response.headers


async def test_json_body_over_the_limit_is_413_and_nothing_is_stored(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    body = register_body(1) | {"full_name": "x" * (backend.settings.max_json_body_bytes + 1)}

    response = await client.post("/api/v1/auth/register", json=body)

    assert_too_large(response)
    assert str(backend.settings.max_json_body_bytes) in response.json()["detail"]
    assert await users_count(backend) == 0


async def test_json_body_of_exactly_the_limit_is_read(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    compact = httpx.Request("POST", "/", json=register_body(1)).content
    padded = compact + b" " * (backend.settings.max_json_body_bytes - len(compact))

    response = await client.post(
        "/api/v1/auth/register", content=padded, headers={"content-type": "application/json"}
    )

    assert response.status_code == 201, response.text


async def test_chunked_body_is_cut_off_as_it_arrives(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    sent = 0
    chunk = b" " * (64 * 1024)

    async def endless_json() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"email": "big@example.com", "full_name": "'
        for _ in range(50 * MiB // len(chunk)):  # bounded: 50 MiB if nothing stops it
            sent += len(chunk)
            yield chunk

    response = await client.post(
        "/api/v1/auth/register",
        content=endless_json(),
        headers={"content-type": "application/json"},
    )

    assert_too_large(response)
    assert sent <= backend.settings.max_json_body_bytes + len(chunk)
    assert await users_count(backend) == 0


async def test_multipart_uploads_have_their_own_larger_limit(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    over_json_limit = b"x" * (backend.settings.max_json_body_bytes + MiB)
    form = {"username": "u@example.com", "password": "wrong-1"}

    allowed = await client.post(
        "/api/v1/auth/token", data=form, files={"image": ("meal.png", over_json_limit)}
    )
    assert allowed.status_code == 401, allowed.text

    too_big = b"x" * (backend.settings.max_upload_bytes + 1)
    refused = await client.post(
        "/api/v1/auth/token", data=form, files={"image": ("meal.png", too_big)}
    )
    assert_too_large(refused)
    assert "upload" in refused.json()["detail"]
