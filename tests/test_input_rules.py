"""What a request body may hold: passwords that are not guessable, one spelling per e-mail
address, numbers and booleans that are numbers and booleans, category names unique in any
case, and an OpenAPI document that says all of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from commissary.core import migrate
from commissary.main import create_app
from commissary.models import Category, Order, Role
from tests import servers
from tests.conftest import PASSWORD, Backend, MakeUser, make_settings
from tests.menu import make_menu

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


# Numbers and booleans


async def test_quantities_must_be_json_integers(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    for quantity in ("1", True, 1.0, "one"):
        body = {"items": [{"product_id": menu.soup.id, "quantity": quantity}]}
        response = await client.post(f"{API}/orders", json=body, headers=hero.headers)
        assert field_messages(response, "items.0.quantity"), quantity
    for product_id in (str(menu.soup.id), True):
        body = {"items": [{"product_id": product_id, "quantity": 1}]}
        response = await client.post(f"{API}/orders", json=body, headers=hero.headers)
        assert field_messages(response, "items.0.product_id"), product_id
    async with backend.runtime.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0
    ok = {"items": [{"product_id": menu.soup.id, "quantity": 1}], "fulfillment": "pickup"}
    assert (await client.post(f"{API}/orders", json=ok, headers=hero.headers)).status_code == 202


async def test_positions_and_flags_must_be_numbers_and_booleans(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    for position in (True, "1"):
        body = {"name": "Soups", "position": position}
        response = await client.post(f"{API}/categories", json=body, headers=admin.headers)
        assert field_messages(response, "position"), position
    other = await make_user()
    for flag in (1, "true", "false", 0):
        response = await client.patch(
            f"{API}/users/{other.user.id}", json={"is_active": flag}, headers=admin.headers
        )
        assert field_messages(response, "is_active"), flag
    role = await client.patch(
        f"{API}/users/{other.user.id}", json={"role": "waiter"}, headers=admin.headers
    )
    assert role.json()["role"] == "waiter"  # enums stay their JSON strings


async def test_prices_accept_json_numbers_and_decimal_strings(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    place = await client.post(
        f"{API}/restaurants",
        json={"name": "Knowhere", "timezone": "Europe/Paris", "kitchen_mode": "manual"},
        headers=admin.headers,
    )
    assert place.status_code == 201, place.text
    for n, price in enumerate(("12.50", 12.5, 3)):
        body = {"restaurant_id": place.json()["id"], "name": f"Soup {n}", "price": price}
        response = await client.post(f"{API}/products", json=body, headers=admin.headers)
        assert response.status_code == 201, response.text
    flagged = {"restaurant_id": place.json()["id"], "name": "Bad", "price": "1", "is_available": 1}
    response = await client.post(f"{API}/products", json=flagged, headers=admin.headers)
    assert field_messages(response, "is_available")


# Category names


async def test_parallel_creates_of_one_name_in_any_case_make_one_category(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    variants = ["drinks", "Drinks", "DRINKS", "dRiNkS", "DrInKs"] * 4

    responses = await asyncio.gather(
        *(
            client.post(f"{API}/categories", json={"name": name}, headers=admin.headers)
            for name in variants
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (len(variants) - 1), [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"category_name_taken"}
    async with backend.runtime.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Category)) == 1


# The OpenAPI document


def body_schema(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    ref = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    schema: dict[str, Any] = spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
    return schema


async def test_the_schema_declares_the_rules_the_server_checks(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, method, field in (
        (f"{API}/auth/register", "post", "password"),
        (f"{API}/users", "post", "password"),
        (f"{API}/users/me", "patch", "new_password"),
    ):
        prop = body_schema(spec, path, method)["properties"][field]
        schema = next((s for s in prop.get("anyOf", [prop]) if s.get("type") == "string"), prop)
        assert (schema["minLength"], schema["maxLength"]) == (8, 128), path
        assert schema["pattern"] == "^[^\\x00]*$"
        assert "NUL" in schema["description"] and "common" in schema["description"]

    verify = body_schema(spec, f"{API}/auth/verify", "post")
    assert verify["anyOf"] == [{"required": ["email", "code"]}, {"required": ["token"]}]

    restaurant = body_schema(spec, f"{API}/restaurants", "post")["properties"]["timezone"]
    assert "Europe/Paris" in restaurant["examples"]
    assert "IANA" in restaurant["description"]

    user_patch = body_schema(spec, f"{API}/users/{{user_id}}", "patch")["properties"]
    assert "anyOf" not in user_patch["email"] and user_patch["email"]["type"] == "string"
    assert user_patch["is_active"]["type"] == "boolean"
    assert {"type": "null"} in user_patch["planet"]["anyOf"]  # planet may be cleared
    product_patch = body_schema(spec, f"{API}/products/{{product_id}}", "patch")["properties"]
    assert "anyOf" not in product_patch["name"]
    assert {"type": "null"} in product_patch["origin"]["anyOf"]
