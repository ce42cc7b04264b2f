"""Each order the kitchen accepts is mailed once to the admins and the restaurant's owners;
an SMTP server that refuses delays that mail, never the order."""

from __future__ import annotations

from email.message import Message

import httpx
import pytest

from commissary.core.db import commit
from commissary.models import Role
from commissary.notifications import staff_mail
from tests.conftest import Backend, MakeUser
from tests.menu import make_menu
from tests.servers import Mailbox
from tests.test_jobs import owed
from tests.test_options import item, make_coffee

ORDERS = "/api/v1/orders"


def staff_mails(mailbox: Mailbox) -> list[Message]:
    return [m for m in mailbox.messages if str(m["Subject"]).startswith("New order #")]


def recipients(message: Message) -> set[str]:
    return {address.strip() for address in str(message["To"]).split(",")}


def text_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


async def test_accepted_order_is_mailed_once_to_admins_and_owners(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, mailbox: Mailbox
) -> None:
    admin = await make_user(Role.ADMIN)
    owner = await make_user(Role.RESTAURATEUR)
    stranger = await make_user(Role.RESTAURATEUR)  # owns another restaurant
    gone = await make_user(Role.ADMIN, is_active=False)
    menu = await make_menu(backend, owner_id=owner.user.id)
    await make_menu(backend, slug="other-place", owner_id=stranger.user.id)
    hero = await make_user(full_name="Star-Lord")
    placed = await client.post(
        ORDERS,
        json={
            "items": [
                {"product_id": menu.soup.id, "quantity": 2},
                {"product_id": menu.cheap.id, "quantity": 3},
            ],
            "note": "no spoon",
        },
        headers=hero.headers,
    )
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]
    await backend.settle()

    [mail] = staff_mails(mailbox)
    assert recipients(mail) == {admin.user.email, owner.user.email}
    assert stranger.user.email not in recipients(mail)
    assert gone.user.email not in recipients(mail)
    assert mail["Subject"] == f"New order #{order_id} at Cosmic Cafeteria: 15.30 EUR"
    body = text_of(mail)
    assert f"order #{order_id} for Star-Lord (pickup)" in body
    assert "2 x Solar Soup @ 7.50 = 15.00" in body
    assert "3 x Stardust Sprinkle @ 0.10 = 0.30" in body
    assert "total: 15.30 EUR" in body
    assert "Note: no spoon" in body
    assert await owed(backend) == 0

    # The periodic jobs run again: nothing is mailed twice.
    await backend.run_job("ops.relay_outbox")
    await backend.settle()
    assert len(staff_mails(mailbox)) == 1


async def test_order_cancelled_for_an_allergy_is_not_mailed_to_the_staff(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, mailbox: Mailbox
) -> None:
    await make_user(Role.ADMIN)
    menu = await make_menu(backend)
    hero = await make_user(allergies=["peanuts"])
    unsafe = {"items": [{"product_id": menu.noodles.id, "quantity": 1}]}
    safe = {"items": [{"product_id": menu.soup.id, "quantity": 1}]}
    refused = await client.post(ORDERS, json=unsafe, headers=hero.headers)
    accepted = await client.post(ORDERS, json=safe, headers=hero.headers)
    await backend.settle()
    assert [m["Subject"] for m in staff_mails(mailbox)] == [
        f"New order #{accepted.json()['id']} at Cosmic Cafeteria: 7.50 EUR"
    ]
    status = await client.get(f"{ORDERS}/{refused.json()['id']}", headers=hero.headers)
    assert status.json()["status"] == "cancelled"


async def test_refused_staff_mail_is_retried_later_and_the_order_goes_on(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    mailbox: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The backoff is shortened so the retry comes during the test.
    monkeypatch.setattr(staff_mail, "BACKOFF", (0.3,))
    admin = await make_user(Role.ADMIN)
    menu = await make_menu(backend)
    hero = await make_user()
    mailbox.refuse = 1
    placed = await client.post(
        ORDERS, json={"items": [{"product_id": menu.soup.id, "quantity": 1}]}, headers=hero.headers
    )
    order_id = placed.json()["id"]
    await backend.run_jobs()
    # The SMTP server said "later": no mail yet, and the mail is still owed.
    assert staff_mails(mailbox) == []
    assert mailbox.refuse == 0
    assert await owed(backend) == 1

    await backend.settle()
    done = await client.get(f"{ORDERS}/{order_id}", headers=hero.headers)
    assert done.json()["status"] == "completed"
    [mail] = staff_mails(mailbox)
    assert recipients(mail) == {admin.user.email}
    assert await owed(backend) == 0


async def test_a_refusal_mid_batch_resends_only_the_orders_not_mailed(
    backend: Backend, make_user: MakeUser, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staff_mail, "BACKOFF", (0.3,))
    await make_user(Role.ADMIN)
    menu = await make_menu(backend)
    hero = await make_user()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=backend.app), base_url="http://testserver"
    ) as client:
        ids = []
        for _ in range(3):
            placed = await client.post(
                ORDERS,
                json={"items": [{"product_id": menu.soup.id, "quantity": 1}]},
                headers=hero.headers,
            )
            ids.append(placed.json()["id"])
    await backend.settle()  # the orders are checked, each mailed once
    mailbox.messages.clear()

    # The same three orders mailed by one batch job, the second refused by the server.
    async with backend.runtime.sessionmaker() as session:
        staff_mail.mail_later(session, ids)
        await commit(session)
    mailbox.refuse = 0
    original = mailbox.handle_DATA
    calls = 0

    async def refuse_second(server: object, session: object, envelope: object) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            return "451 4.3.0 Temporary failure, try again later"
        return await original(server, session, envelope)

    monkeypatch.setattr(mailbox, "handle_DATA", refuse_second)
    await backend.settle()
    subjects = sorted(str(m["Subject"]).split(" at ")[0] for m in staff_mails(mailbox))
    assert subjects == sorted(f"New order #{i}" for i in ids)


async def test_the_staff_mail_names_the_drink_options_of_each_line(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, mailbox: Mailbox
) -> None:
    coffee = await make_coffee(client, make_user)
    hero = await make_user()
    o = coffee.options
    body = {"items": [item(coffee.latte, 2, o["L"], o["Oat"]), item(coffee.espresso)]}
    placed = await client.post(ORDERS, json=body, headers=hero.headers)
    assert placed.status_code == 202, placed.text
    await backend.settle()
    [mail] = staff_mails(mailbox)
    assert coffee.owner.user.email in recipients(mail)
    text = text_of(mail)
    assert "2 x Latte (L, Oat) @ 4.40 = 8.80" in text
    assert "1 x Espresso @ 2.00 = 2.00" in text
