"""What a request body may hold: passwords that are not guessable, one spelling per e-mail
address."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from commissary.core import migrate
from commissary.main import create_app
from commissary.models import Role
from tests import servers
from tests.conftest import PASSWORD, MakeUser, make_settings

API = "/api/v1"
REGISTER = f"{API}/auth/register"
# Leaked-password favourites, with the usual capital, digit and symbol dressing.
COMMON_PASSWORDS = [
    "Passw0rd!",
    "P@ssw0rd",
    "Password1",
    "admin123",
    "welcome1",
    "Welcome1!",
    "Summer2024!",
    "iloveyou1",
    "qwerty123",
    "Qwerty2024",
    "letmein!",
    "monkey123",
    "football1",
    "abc12345",
    "dragon12",
    "trustno1!",
    "sunshine1",
    "master123",
    "1q2w3e4r",
    "zaq12wsx",
    "baseball1",
]


def person(email: str = "nova@example.com", password: str = PASSWORD) -> dict[str, str]:
    return {"email": email, "password": password, "full_name": "Nova Prime"}


def field_messages(response: httpx.Response, field: str) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["message"] for e in response.json()["errors"] if e["field"] == field]


# Passwords


async def test_common_and_leaked_passwords_are_refused_with_a_reason(
    client: httpx.AsyncClient,
) -> None:
    for n, password in enumerate(COMMON_PASSWORDS):
        response = await client.post(REGISTER, json=person(f"p{n}@example.com", password))
        messages = field_messages(response, "password")
        assert messages, password
        assert "too easy to guess" in messages[0] or "letters" in messages[0], messages


async def test_a_strong_password_is_accepted(client: httpx.AsyncClient) -> None:
    for n, password in enumerate((PASSWORD, "Tangerine-Orbit-Ladder", "quiet maple 7 river")):
        response = await client.post(REGISTER, json=person(f"ok{n}@example.com", password))
        assert response.status_code == 201, (password, response.text)


async def test_a_password_with_nul_is_refused_everywhere_one_is_set(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    nul = "correct-horse\x00-9"
    register = await client.post(REGISTER, json=person(password=nul))
    assert any("NUL" in m for m in field_messages(register, "password"))

    admin = await make_user(Role.ADMIN)
    create = await client.post(
        f"{API}/users", json=person("other@example.com", nul), headers=admin.headers
    )
    assert any("NUL" in m for m in field_messages(create, "password"))
    change = await client.patch(
        f"{API}/users/me",
        json={"current_password": PASSWORD, "new_password": nul},
        headers=admin.headers,
    )
    assert any("NUL" in m for m in field_messages(change, "new_password"))
    reset = await client.patch(
        f"{API}/users/{admin.user.id}", json={"password": nul}, headers=admin.headers
    )
    assert any("NUL" in m for m in field_messages(reset, "password"))


# E-mail addresses


def wide(text: str) -> str:
    """The full-width forms of ASCII letters and signs (as typed with some input methods)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


async def test_look_alike_addresses_do_not_make_a_second_account(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post(REGISTER, json=person("admin@example.com"))).status_code == 201

    full_width = await client.post(REGISTER, json=person(wide("admin@example") + ".com"))
    assert full_width.status_code == 409
    assert full_width.json()["code"] == "email_taken"

    cyrillic_i = "adm\u0456n@example.com"
    cyrillic_a = "admin@ex\u0430mple.com"
    for address in (cyrillic_i, cyrillic_a):
        response = await client.post(REGISTER, json=person(address))
        assert any("alphabets" in m for m in field_messages(response, "email")), address

    login = await client.post(
        f"{API}/auth/login", json={"email": wide("ADMIN") + "@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200  # the same folding on the way in


async def test_addresses_in_one_other_alphabet_are_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(REGISTER, json=person("\u0438\u0432\u0430\u043d@example.com"))
    assert response.status_code == 201, response.text


async def test_reserved_domains_are_refused_by_default(client: httpx.AsyncClient) -> None:
    for address in ("ops@corp.local", "qa@site.test", "root@localhost"):
        response = await client.post(REGISTER, json=person(address))
        assert response.status_code == 422, (address, response.text)
        assert response.json()["code"] in {"reserved_email_domain", "validation_failed"}
        assert field_messages(response, "email")


@pytest.fixture
async def intranet(
    tmp_path: Path, smtp: tuple[int, servers.Mailbox]
) -> AsyncIterator[httpx.AsyncClient]:
    """An install that allows reserved domains (its mail lives on ``corp.local``)."""
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'intranet.db'}",
        None,
        smtp[0],
        allow_reserved_email_domains=True,
    )
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intranet") as http:
            yield http


async def test_an_intranet_may_allow_reserved_domains(intranet: httpx.AsyncClient) -> None:
    response = await intranet.post(REGISTER, json=person("Ops@Corp.Local"))
    assert response.status_code == 201, response.text
    assert response.json()["email"] == "ops@corp.local"
    look_alike = await intranet.post(REGISTER, json=person("ops@c\u043erp.local"))
    assert look_alike.status_code == 422
