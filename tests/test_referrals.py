"""Referral codes: every member has one, registering with it links the two, and the referral
converts once, at the referee's first completed order (set by the event stream's hook)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.engine import Connection

from commissary.models import OrderStatus, Role, User
from commissary.models.user import REFERRAL_ALPHABET, REFERRAL_CODE_LENGTH
from tests.conftest import Account, Backend, MakeUser, code_in
from tests.menu import make_menu
from tests.servers import Mailbox
from tests.test_migrations import _inspect, _upgrade, empty_database  # noqa: F401 - fixture
from tests.test_notifications import event, mine, place, sequenced, stored_events

REGISTER = "/api/v1/auth/register"
REFERRALS = "/api/v1/users/me/referrals"
ME = "/api/v1/users/me"


def newcomer(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "email": f"rocket{n}@example.com",
        "password": "stardust-nebula-42",
        "full_name": f"Rocket {n}",
        **extra,
    }


async def code_of(client: httpx.AsyncClient, who: Account) -> str:
    me = await client.get(ME, headers=who.headers)
    assert me.status_code == 200
    code: str = me.json()["referral_code"]
    return code


async def count_users(backend: Backend) -> int:
    async with backend.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def signed_in(client: httpx.AsyncClient, mailbox: Mailbox, email: str) -> Account:
    """Verify a registered account with its mailed code and sign it in."""
    [mail] = mailbox.to(email)
    verified = await client.post(
        "/api/v1/auth/verify", json={"email": email, "code": code_in(mail)}
    )
    assert verified.status_code == 200, verified.text
    login = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": "stardust-nebula-42"}
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    me = (await client.get(ME, headers=headers)).json()
    return Account(User(id=me["id"], email=email), "stardust-nebula-42", headers)


async def test_every_member_has_their_own_short_url_safe_code(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    codes = [await code_of(client, await make_user(role)) for role in (Role.CUSTOMER, Role.ADMIN)]
    assert codes[0] != codes[1]
    for code in codes:
        assert len(code) == REFERRAL_CODE_LENGTH
        assert set(code) <= set(REFERRAL_ALPHABET)


async def test_registering_with_a_code_links_the_two_without_showing_e_mails(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, mailbox: Mailbox
) -> None:
    star = await make_user(full_name="Star-Lord")
    code = await code_of(client, star)
    other = await make_user()
    first = await client.post(REGISTER, json=newcomer(1, referral_code=code))
    # Codes are read case-insensitively, as people type them from a flyer.
    second = await client.post(REGISTER, json=newcomer(2, referral_code=f" {code.upper()} "))
    plain = await client.post(REGISTER, json=newcomer(3))
    assert [r.status_code for r in (first, second, plain)] == [201, 201, 201], second.text
    assert first.json()["referral_code"] not in (code, second.json()["referral_code"])

    mine_ = await client.get(REFERRALS, headers=star.headers)
    assert mine_.status_code == 200, mine_.text
    page = mine_.json()
    assert page["total"] == 2 and page["converted"] == 0
    assert [item["full_name"] for item in page["items"]] == ["Rocket 2", "Rocket 1"]
    assert set(page["items"][0]) == {"full_name", "joined_at", "converted_at"}
    assert page["items"][0]["converted_at"] is None
    assert "@" not in mine_.text
    assert (await client.get(REFERRALS, headers=other.headers)).json()["total"] == 0
    oldest = await client.get(REFERRALS, params={"sort": "joined_at"}, headers=star.headers)
    assert [item["full_name"] for item in oldest.json()["items"]] == ["Rocket 1", "Rocket 2"]
    assert (await client.get(REFERRALS)).status_code == 401


async def test_an_unknown_code_is_a_422_on_the_field_and_creates_nothing(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, mailbox: Mailbox
) -> None:
    gone = await make_user(is_active=False)
    gone_code = gone.user.referral_code
    before = await count_users(backend)
    details = set()
    for n, code in enumerate(["zzzzzzzzzz", "no such code!", gone_code], start=1):
        answer = await client.post(REGISTER, json=newcomer(n, referral_code=code))
        assert answer.status_code == 422, answer.text
        problem = answer.json()
        assert problem["code"] == "unknown_referral_code"
        assert [e["field"] for e in problem["errors"]] == ["referral_code"]
        details.add(problem["detail"])
    assert len(details) == 1  # the answer says nothing about why
    too_long = await client.post(REGISTER, json=newcomer(9, referral_code="x" * 33))
    assert too_long.status_code == 422
    assert [e["field"] for e in too_long.json()["errors"]] == ["referral_code"]
    assert await count_users(backend) == before
    await backend.run_jobs()
    assert mailbox.messages == []


async def test_the_first_completed_order_converts_the_referral_once(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, mailbox: Mailbox
) -> None:
    star = await make_user(full_name="Star-Lord")
    menu = await make_menu(backend)
    registered = await client.post(
        REGISTER, json=newcomer(1, referral_code=await code_of(client, star))
    )
    assert registered.status_code == 201
    await backend.run_jobs()
    rocket = await signed_in(client, mailbox, "rocket1@example.com")
    loner = await make_user()  # referred by nobody

    # The simulated kitchen completes both orders; the event stream's hook sees it.
    order = await place(client, backend, rocket, menu.soup.id)
    await place(client, backend, loner, menu.soup.id)
    completed = [
        e for e in await stored_events(backend, order) if e.to_status == OrderStatus.COMPLETED
    ]
    assert len(completed) == 1

    page = (await client.get(REFERRALS, headers=star.headers)).json()
    assert page["converted"] == 1
    converted_at = dt.datetime.fromisoformat(page["items"][0]["converted_at"])
    assert converted_at == completed[0].created_at
    note = await mine(client, star)
    assert [i["kind"] for i in note["items"]] == ["referral.converted"]
    assert note["items"][0]["body"] == (
        "Rocket 1, who joined with your referral code, completed a first order."
    )

    # A later completed order (here a delivery's `delivered`) changes nothing.
    second = await place(client, backend, rocket, menu.soup.id)
    await sequenced(backend, [event(second, "delivered", to_status="completed")])
    again = (await client.get(REFERRALS, headers=star.headers)).json()
    assert again["items"][0]["converted_at"] == page["items"][0]["converted_at"]
    assert [i["kind"] for i in (await mine(client, star))["items"]] == ["referral.converted"]


def _add_members(conn: Connection) -> None:
    users = Table("user_account", MetaData(), autoload_with=conn)
    now = dt.datetime(2026, 12, 1)
    conn.execute(
        users.insert(),
        [
            {
                "email": f"old{n}@example.com",
                "password_hash": "x",
                "full_name": f"Old {n}",
                "role": "customer",
                "is_verified": True,
                "is_active": True,
                "allergies": [],
                "created_at": now,
                "updated_at": now,
                "token_key": f"{n:032d}",
            }
            for n in range(5)
        ],
    )
    conn.commit()


def _codes(conn: Connection) -> list[str]:
    users = Table("user_account", MetaData(), autoload_with=conn)
    return list(conn.execute(select(users.c.referral_code)).scalars())


async def test_existing_members_get_a_code_in_the_migration(
    empty_database: str,  # noqa: F811 - the fixture imported above
) -> None:
    await _upgrade(empty_database, "0011")
    await _inspect(empty_database, _add_members)
    await _upgrade(empty_database)
    codes = await _inspect(empty_database, _codes)
    assert len(codes) == 5 == len(set(codes))
    assert all(
        len(code) == REFERRAL_CODE_LENGTH and set(code) <= set(REFERRAL_ALPHABET) for code in codes
    )
