"""Registration, e-mail verification, login, token rotation and logout."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
from sqlalchemy import select, update

from commissary.core.security import encode_token
from commissary.models import EmailVerification, RefreshToken
from commissary.users.auth_service import ACCESS_AUDIENCE, REFRESH_AUDIENCE, access_token
from tests.conftest import PASSWORD, Backend, MakeUser, code_in
from tests.servers import Mailbox

HERO = {
    "email": "Nova@Example.com",
    "password": "stardust-nebula-42",
    "full_name": "Nova Prime",
    "planet": "Xandar",
    "allergies": ["Peanuts", " gluten "],
}


async def register(client: httpx.AsyncClient, **overrides: object) -> httpx.Response:
    return await client.post("/api/v1/auth/register", json={**HERO, **overrides})


async def test_register_returns_the_public_user(client: httpx.AsyncClient) -> None:
    response = await register(client)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "nova@example.com"
    assert body["role"] == "customer"
    assert body["is_verified"] is False
    assert body["planet"] == "Xandar"
    assert body["allergies"] == ["Peanuts", "gluten"]
    assert set(body) == {
        "id",
        "email",
        "full_name",
        "role",
        "is_verified",
        "planet",
        "allergies",
        "created_at",
        "referral_code",
    }


async def test_register_with_taken_email_in_other_case_is_409(client: httpx.AsyncClient) -> None:
    assert (await register(client)).status_code == 201
    again = await register(client, email="NOVA@example.COM")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["code"] == "email_taken"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("password", "short1"),
        ("password", "onlyletters"),
        ("password", "password123"),
        ("email", "not-an-email"),
        ("full_name", "x" * 121),
        ("planet", "p" * 81),
        ("allergies", ["a" * 65]),
        ("role", "admin"),
    ],
)
async def test_register_bad_input_names_the_field(
    client: httpx.AsyncClient, field: str, value: object
) -> None:
    response = await register(client, **{field: value})
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert any(e["field"].split(".")[0] == field for e in problem["errors"]), problem
    listed = await client.post("/api/v1/auth/login", json={"email": HERO["email"], "password": "x"})
    assert listed.status_code == 401  # nothing was stored


async def test_register_sends_a_code_that_verifies(
    client: httpx.AsyncClient, backend: Backend, mailbox: Mailbox
) -> None:
    assert (await register(client)).status_code == 201
    await backend.run_jobs()
    [mail] = mailbox.to("nova@example.com")
    response = await client.post(
        "/api/v1/auth/verify", json={"email": "nova@example.com", "code": code_in(mail)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_verified"] is True


async def test_verification_link_token_verifies(
    client: httpx.AsyncClient, backend: Backend, mailbox: Mailbox
) -> None:
    await register(client)
    await backend.run_jobs()
    body = mailbox.to("nova@example.com")[0].get_payload(decode=True).decode()
    link = next(line for line in body.splitlines() if "token=" in line)
    token = link.split("token=", 1)[1]
    response = await client.get("/api/v1/auth/verify", params={"token": token})
    assert response.status_code == 200
    assert response.json()["is_verified"] is True
    by_post = await client.post("/api/v1/auth/verify", json={"token": token + "x"})
    assert by_post.status_code == 422
    assert by_post.json()["code"] == "invalid_verification_token"


async def test_wrong_codes_are_counted_and_exhaust_the_code(
    client: httpx.AsyncClient, backend: Backend, mailbox: Mailbox
) -> None:
    await register(client)
    await backend.run_jobs()
    good = code_in(mailbox.messages[0])
    bad = f"{(int(good) + 1) % 1_000_000:06d}"
    for _ in range(backend.settings.verification_max_attempts):
        wrong = await client.post("/api/v1/auth/verify", json={"email": HERO["email"], "code": bad})
        assert wrong.status_code == 400
        assert wrong.json()["code"] == "invalid_verification_code"
    late = await client.post("/api/v1/auth/verify", json={"email": HERO["email"], "code": good})
    assert late.status_code == 400
    assert late.json()["code"] == "verification_attempts_exhausted"


async def test_expired_code_is_refused(
    client: httpx.AsyncClient, backend: Backend, mailbox: Mailbox
) -> None:
    await register(client)
    await backend.run_jobs()
    code = code_in(mailbox.messages[0])
    async with backend.runtime.sessionmaker() as session:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        await session.execute(update(EmailVerification).values(expires_at=past))
        await session.commit()
    response = await client.post("/api/v1/auth/verify", json={"email": HERO["email"], "code": code})
    assert response.status_code == 400
    assert response.json()["code"] == "verification_code_expired"


async def test_resend_answers_the_same_for_unknown_addresses(
    client: httpx.AsyncClient, backend: Backend, mailbox: Mailbox
) -> None:
    await register(client)
    await backend.run_jobs()
    known = await client.post("/api/v1/auth/verify/resend", json={"email": HERO["email"]})
    unknown = await client.post("/api/v1/auth/verify/resend", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    await backend.run_jobs()
    first, second = mailbox.to("nova@example.com")
    assert mailbox.to("nobody@example.com") == []
    old = await client.post(
        "/api/v1/auth/verify", json={"email": HERO["email"], "code": code_in(first)}
    )
    if code_in(first) != code_in(second):
        assert old.status_code == 400  # a resend replaces the earlier code
    new = await client.post(
        "/api/v1/auth/verify", json={"email": HERO["email"], "code": code_in(second)}
    )
    assert new.status_code == 200


async def test_login_returns_a_token_pair_that_authenticates(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user()
    response = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    pair = response.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] > 0
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == account.user.id
    assert me.headers["cache-control"] == "no-store"


async def test_oauth2_token_form_logs_in(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    account = await make_user()
    response = await client.post(
        "/api/v1/auth/token", data={"username": account.user.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["access_token"]


async def test_wrong_password_and_unknown_email_get_the_same_401(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user()
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": "nope-nope-1"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "ghost@example.com", "password": "nope-nope-1"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"


async def test_login_is_rate_limited_per_account(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    account = await make_user()
    for _ in range(backend.settings.login_max_failures_per_account):
        bad = await client.post(
            "/api/v1/auth/login", json={"email": account.user.email, "password": "nope-nope-1"}
        )
        assert bad.status_code == 401
    blocked = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    other = await make_user()
    fine = await client.post(
        "/api/v1/auth/login", json={"email": other.user.email, "password": PASSWORD}
    )
    assert fine.status_code == 200


async def test_login_is_rate_limited_per_client_address(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    limit = backend.settings.login_max_failures_per_client
    statuses = []
    for n in range(limit + 1):
        response = await client.post(
            "/api/v1/auth/login", json={"email": f"u{n}@example.com", "password": "x"}
        )
        statuses.append(response.status_code)
    assert statuses[:limit] == [401] * limit
    assert statuses[limit] == 429


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    account = await make_user()
    pair = (
        await client.post(
            "/api/v1/auth/login", json={"email": account.user.email, "password": PASSWORD}
        )
    ).json()
    rotated = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert rotated.status_code == 200
    newer = rotated.json()
    assert newer["refresh_token"] != pair["refresh_token"]
    reused = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    # The reuse revoked the whole family, including the token issued by the rotation.
    after = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": newer["refresh_token"]}
    )
    assert after.status_code == 401
    async with backend.runtime.sessionmaker() as session:
        rows = (await session.scalars(select(RefreshToken))).all()
    assert rows
    assert all(row.revoked_at is not None for row in rows)


async def test_logout_revokes_the_refresh_token(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user()
    pair = (
        await client.post(
            "/api/v1/auth/login", json={"email": account.user.email, "password": PASSWORD}
        )
    ).json()
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert out.status_code == 204
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401


async def test_a_token_accepted_before_is_refused_once_it_expires(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    """Checked tokens are remembered (``security.decode_token``): expiry still counts."""
    account = await make_user()
    token = access_token(backend.runtime, account.user, ttl=2)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    await asyncio.sleep(2.5)
    response = await client.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_expired_or_foreign_tokens_are_401(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    account = await make_user()
    secret = backend.runtime.secret
    expired = encode_token(secret, subject=str(account.user.id), audience=ACCESS_AUDIENCE, ttl=-1)
    refresh_as_access = encode_token(
        secret, subject=str(account.user.id), audience=REFRESH_AUDIENCE, ttl=60
    )
    forged = encode_token(
        "another-secret-" * 4, subject=str(account.user.id), audience=ACCESS_AUDIENCE, ttl=60
    )
    for token, reason in (
        (expired, "expired"),
        (refresh_as_access, "invalid"),
        (forged, "invalid"),
    ):
        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401
        assert reason in response.json()["detail"]
    anonymous = await client.get("/api/v1/users/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
