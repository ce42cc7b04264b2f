"""In-app notifications made from committed order events by the event stream's hook, and the
e-mails of the important ones: each member sees only their own, each mail is sent once."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from email.message import Message
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from commissary.core.db import commit
from commissary.events.sequencer import StreamEvent
from commissary.models import KitchenMode, Notification, Order, OrderEvent, Role
from commissary.notifications import customer_mail
from commissary.notifications.events import notify
from commissary.notifications.rules import EMAILED, Audience, drafts
from tests.conftest import Account, Backend, MakeUser
from tests.menu import make_menu
from tests.servers import Mailbox
from tests.test_jobs import owed

ORDERS = "/api/v1/orders"
NOTIFICATIONS = "/api/v1/notifications"
positions = itertools.count(1000)


async def place(
    client: httpx.AsyncClient, backend: Backend, who: Account, product_id: int, **extra: Any
) -> Order:
    """Place an order and let the workers and the event stream go through it. The tests use
    manual kitchens, whose orders stay `in_progress` (notifying nobody) until staff move
    them, so the events a test hands the hook itself are the only others."""
    placed = await client.post(
        ORDERS,
        json={"items": [{"product_id": product_id, "quantity": 1}], **extra},
        headers=who.headers,
    )
    assert placed.status_code == 202, placed.text
    await backend.settle()  # the worker's check, and the stream's own run of the hook
    async with backend.runtime.sessionmaker() as session:
        order = await session.get(Order, placed.json()["id"])
        assert order is not None
        return order


def event(order: Order, type_: str, *, courier_id: int | None = None, **fields: Any) -> StreamEvent:
    """A committed event of ``order`` as the sequencer hands it to its hooks."""
    values: dict[str, Any] = {
        "id": next(positions),
        "order_id": order.id,
        "sequence": 1,
        "type": type_,
        "from_status": None,
        "to_status": None,
        "actor": "system",
        "actor_id": None,
        "data": None,
        "created_at": order.order_time,
        "restaurant_id": order.restaurant_id,
        "customer_id": order.customer_id,
        "courier_id": courier_id,
        "waiter_id": order.waiter_id,
        "fulfillment": order.fulfillment.value,
        "total": order.total,
        "currency": order.currency,
    }
    return StreamEvent(**{**values, **fields})


async def stored_events(backend: Backend, order: Order) -> list[StreamEvent]:
    """The order's real events, as the stream would deliver them."""
    async with backend.runtime.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
            )
        ).all()
    return [
        event(
            order,
            row.type,
            sequence=row.sequence,
            from_status=row.from_status.value if row.from_status else None,
            to_status=row.to_status.value if row.to_status else None,
            actor=row.actor,
            actor_id=row.actor_id,
            data=row.data,
            created_at=row.created_at,
        )
        for row in rows
    ]


async def sequenced(backend: Backend, events: Sequence[StreamEvent]) -> None:
    """Run the hook on a batch in a transaction of its own, as the sequencer does."""
    async with backend.runtime.sessionmaker() as session:
        await notify(session, events)
        await commit(session)


async def mine(client: httpx.AsyncClient, who: Account, **params: Any) -> dict[str, Any]:
    answer = await client.get(NOTIFICATIONS, params=params, headers=who.headers)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def kinds(page: dict[str, Any]) -> list[str]:
    return [item["kind"] for item in page["items"]]


def text_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def customer_mails(mailbox: Mailbox) -> list[Message]:
    return [m for m in mailbox.messages if not str(m["Subject"]).startswith("New order #")]


async def count_notifications(backend: Backend) -> int:
    async with backend.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Notification)) or 0)


async def test_the_event_stream_notifies_as_staff_move_a_delivery(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, mailbox: Mailbox
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    menu = await make_menu(backend, owner_id=owner.user.id, kitchen_mode=KitchenMode.MANUAL)
    hero = await make_user()
    order = await place(
        client, backend, hero, menu.soup.id, fulfillment="delivery", delivery_address="Knowhere 1"
    )
    accepted = await client.post(f"{ORDERS}/{order.id}/accept", json={}, headers=owner.headers)
    assert accepted.status_code == 200, accepted.text
    await backend.settle()
    for step in ("ready", "out_for_delivery", "completed"):
        moved = await client.post(
            f"{ORDERS}/{order.id}/status", json={"status": step}, headers=owner.headers
        )
        assert moved.status_code == 200, moved.text
        await backend.settle()
    page = await mine(client, hero)
    assert kinds(page) == [
        "order.completed",
        "order.out_for_delivery",
        "order.ready",
        "order.accepted",
    ]
    positions = [item["event_id"] for item in page["items"]]
    assert positions == sorted(positions, reverse=True) and None not in positions
    assert kinds(await mine(client, owner)) == ["order.created"]
    assert [m["Subject"] for m in customer_mails(mailbox)] == [
        f"Order #{order.id} accepted",
        f"Order #{order.id} is on its way",
    ]
    assert mailbox.to(hero.user.email) == customer_mails(mailbox)

    # The stream runs again (the periodic sweep): nothing is notified or mailed twice.
    await backend.run_job("events.sequence")
    await backend.run_job("ops.relay_outbox")
    await backend.settle()
    assert (await mine(client, hero))["total"] == 4
    assert len(customer_mails(mailbox)) == 2


async def test_customer_follows_their_order_and_nobody_else_sees_it(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, mailbox: Mailbox
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    menu = await make_menu(backend, owner_id=owner.user.id, kitchen_mode=KitchenMode.MANUAL)
    hero = await make_user(full_name="Gamora")
    stranger = await make_user()
    order = await place(client, backend, hero, menu.soup.id)
    accepted = event(order, "accepted", data={"prep_minutes": 15, "ready_by": None})
    ready = event(order, "status.ready", from_status="in_progress", to_status="ready")
    done = event(order, "status.completed", from_status="ready", to_status="completed")
    await sequenced(backend, [accepted, ready, done])
    await backend.run_jobs()

    page = await mine(client, hero)
    assert kinds(page) == ["order.completed", "order.ready", "order.accepted"]  # newest first
    assert page["total"] == page["unread"] == 3
    first = page["items"][2]
    assert first["order_id"] == order.id and first["event_id"] == accepted.id
    assert first["title"] == f"Order #{order.id} accepted"
    assert first["body"] == (
        f"Cosmic Cafeteria accepted your order #{order.id}; it should be ready in 15 minutes."
    )
    assert first["read_at"] is None and first["emailed_at"] is not None
    assert page["items"][1]["body"] == (
        f"Your order #{order.id} is ready to pick up at Cosmic Cafeteria."
    )
    assert page["items"][0]["emailed_at"] is None  # completed is in-app only

    assert kinds(await mine(client, owner)) == ["order.created"]
    assert (await mine(client, owner))["items"][0]["body"] == (
        f"Order #{order.id} at Cosmic Cafeteria (pickup): 7.50 EUR."
    )
    assert (await mine(client, stranger))["items"] == []

    [mail] = mailbox.to(hero.user.email)
    assert mail["Subject"] == f"Order #{order.id} accepted"
    assert "Hello Gamora," in text_of(mail)
    assert f"accepted your order #{order.id}" in text_of(mail)
    # The owner's and the other notifications are in-app only (the staff's order mail aside).
    assert [m["To"] for m in customer_mails(mailbox)] == [hero.user.email]


async def test_owners_and_courier_hear_of_what_concerns_them(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    owners = [await make_user(Role.RESTAURATEUR), await make_user(Role.RESTAURATEUR)]
    menu = await make_menu(backend, owner_id=owners[0].user.id, kitchen_mode=KitchenMode.MANUAL)
    other = await make_menu(
        backend, slug="other-place", owner_id=owners[1].user.id, kitchen_mode=KitchenMode.MANUAL
    )
    courier = await make_user(Role.COURIER)
    hero = await make_user()
    order = await place(
        client, backend, hero, menu.soup.id, fulfillment="delivery", delivery_address="Knowhere 1"
    )
    await place(client, backend, hero, other.soup.id)
    cancelled = event(
        order,
        "status.cancelled",
        to_status="cancelled",
        actor="customer",
        actor_id=hero.user.id,
        data={"reason": "changed my mind"},
        courier_id=courier.user.id,
    )
    await sequenced(
        backend,
        [
            event(order, "courier.assigned", courier_id=courier.user.id),
            event(order, "acceptance.overdue"),
            cancelled,
        ],
    )

    page = await mine(client, owners[0])
    assert kinds(page) == ["order.cancelled", "order.acceptance_overdue", "order.created"]
    assert page["items"][0]["body"] == (
        f"The customer cancelled order #{order.id} at Cosmic Cafeteria: changed my mind."
    )
    # Not their restaurant: only their own restaurant's new order.
    assert kinds(await mine(client, owners[1])) == ["order.created"]
    # The customer cancelled it themselves: they hear of the courier, not of the cancel.
    assert kinds(await mine(client, hero)) == ["courier.assigned"]
    assert kinds(await mine(client, courier)) == ["delivery.cancelled"]

    # A courier who gives a delivery back is not told; one it is taken from is.
    await sequenced(
        backend,
        [
            event(order, "courier.released", actor="courier", actor_id=courier.user.id),
            event(order, "courier.released", actor="staff", data={"courier_id": courier.user.id}),
        ],
    )
    assert kinds(await mine(client, courier)) == ["delivery.released", "delivery.cancelled"]


async def test_an_event_naming_a_deleted_member_does_not_fail_its_batch(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend, kitchen_mode=KitchenMode.MANUAL)
    hero = await make_user()
    order = await place(client, backend, hero, menu.soup.id)
    await sequenced(
        backend,
        [
            event(order, "courier.released", actor="staff", data={"courier_id": 999_999}),
            event(order, "status.ready"),
        ],
    )
    assert kinds(await mine(client, hero)) == ["order.ready"]


async def test_restaurant_cancel_reaches_the_customer_with_its_reason(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, mailbox: Mailbox
) -> None:
    menu = await make_menu(backend, kitchen_mode=KitchenMode.MANUAL)
    hero = await make_user()
    order = await place(client, backend, hero, menu.soup.id)
    await sequenced(
        backend,
        [
            event(order, "rejected", to_status="cancelled", data={"reason": "out of soup"}),
            event(order, "status.cancelled", actor="staff", data={"reason": "closing early"}),
        ],
    )
    await backend.run_jobs()
    page = await mine(client, hero)
    assert [i["body"] for i in page["items"]] == [
        f"Your order #{order.id} at Cosmic Cafeteria was cancelled: closing early.",
        f"Cosmic Cafeteria could not take your order #{order.id}: out of soup.",
    ]
    assert [m["Subject"] for m in mailbox.to(hero.user.email)] == [f"Order #{order.id} rejected"]


async def test_a_batch_is_one_insert_and_its_mails_one_job_sent_once(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, mailbox: Mailbox
) -> None:
    menu = await make_menu(backend, kitchen_mode=KitchenMode.MANUAL)
    heroes = [await make_user(), await make_user(), await make_user()]
    orders = [await place(client, backend, hero, menu.soup.id) for hero in heroes]
    await backend.settle()
    mailbox.messages.clear()
    batch = [
        event(orders[0], "accepted"),
        event(orders[1], "rejected", data={"reason": "closed"}),
        event(orders[2], "picked_up"),
        event(orders[2], "courier.assigned"),
    ]
    inserts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        table = statement.lstrip().upper().removeprefix("INSERT INTO ").split(" ")[0]
        if statement.lstrip().upper().startswith("INSERT INTO "):
            inserts.append(table.strip('"').lower())

    engine = backend.runtime.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        await sequenced(backend, batch)
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    # One statement for the four notifications, one outbox job for the three mails.
    assert sorted(inserts) == ["notification", "outbox_job"]
    assert await count_notifications(backend) == 4
    await backend.run_jobs()
    assert sorted(m["Subject"] for m in mailbox.messages) == sorted(
        [
            f"Order #{orders[0].id} accepted",
            f"Order #{orders[1].id} rejected",
            f"Order #{orders[2].id} is on its way",
        ]
    )
    assert await owed(backend) == 0

    # The same job delivered again, or the relay: nothing is mailed twice.
    async with backend.runtime.sessionmaker() as session:
        ids = list((await session.scalars(select(Notification.id).order_by(Notification.id))).all())
    await backend.run_job(customer_mail.JOB, notification_ids=ids)
    await backend.run_job("ops.relay_outbox")
    await backend.settle()
    assert len(mailbox.messages) == 3, [(m["Subject"], m["To"]) for m in mailbox.messages]


async def test_refused_mail_is_retried_later_without_resending_the_sent_ones(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    mailbox: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(customer_mail, "BACKOFF", (0.3,))
    menu = await make_menu(backend, kitchen_mode=KitchenMode.MANUAL)
    heroes = [await make_user(), await make_user(), await make_user()]
    orders = [await place(client, backend, hero, menu.soup.id) for hero in heroes]
    await backend.settle()
    mailbox.messages.clear()
    # The first mail goes through, the second is refused ("try later"), then all is well.
    await sequenced(backend, [event(order, "accepted") for order in orders])
    original = mailbox.handle_DATA
    calls = itertools.count(1)

    async def refuse_the_second(server: Any, session: Any, envelope: Any) -> str:
        if next(calls) == 2:
            return "451 4.3.0 Temporary failure, try again later"
        return await original(server, session, envelope)

    monkeypatch.setattr(mailbox, "handle_DATA", refuse_the_second)
    await backend.run_jobs()
    assert [m["To"] for m in mailbox.messages] == [heroes[0].user.email]
    assert await owed(backend) == 1  # the two others, later

    await backend.settle()
    assert sorted(m["To"] for m in mailbox.messages) == sorted(h.user.email for h in heroes)
    async with backend.runtime.sessionmaker() as session:
        unmailed = await session.scalar(
            select(func.count()).select_from(Notification).where(Notification.emailed_at.is_(None))
        )
    assert unmailed == 0


async def test_mail_can_be_switched_off(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    mailbox: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = backend.settings.model_copy(update={"notification_mail": False})
    monkeypatch.setattr(backend.runtime, "settings", settings)
    menu = await make_menu(backend, kitchen_mode=KitchenMode.MANUAL)
    hero = await make_user()
    order = await place(client, backend, hero, menu.soup.id)
    await backend.settle()
    mailbox.messages.clear()
    await sequenced(backend, [event(order, "accepted")])
    await backend.settle()
    assert kinds(await mine(client, hero)) == ["order.accepted"]
    assert mailbox.messages == []


async def test_read_one_read_all_and_filters(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend, kitchen_mode=KitchenMode.MANUAL)
    hero = await make_user()
    other = await make_user()
    order = await place(client, backend, hero, menu.soup.id)
    theirs = await place(client, backend, other, menu.soup.id)
    await sequenced(
        backend,
        [
            event(order, "accepted"),
            event(order, "status.ready"),
            event(order, "status.completed"),
            event(theirs, "status.ready"),
        ],
    )
    items = (await mine(client, hero))["items"]
    ready_id = items[1]["id"]
    read = await client.post(f"{NOTIFICATIONS}/{ready_id}/read", headers=hero.headers)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    again = await client.post(f"{NOTIFICATIONS}/{ready_id}/read", headers=hero.headers)
    assert again.json()["read_at"] == read.json()["read_at"]

    assert kinds(await mine(client, hero, unread="true")) == ["order.completed", "order.accepted"]
    assert kinds(await mine(client, hero, unread="false")) == ["order.ready"]
    assert kinds(await mine(client, hero, read_at__isnull="false")) == ["order.ready"]
    assert kinds(await mine(client, hero, kind="order.accepted")) == ["order.accepted"]
    assert kinds(await mine(client, hero, sort="id", limit=1)) == ["order.accepted"]
    assert (await mine(client, hero))["unread"] == 2

    # Someone else's notification is as absent as one that does not exist.
    [theirs_note] = (await mine(client, other))["items"]
    foreign = await client.post(f"{NOTIFICATIONS}/{theirs_note['id']}/read", headers=hero.headers)
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "notification_not_found"
    missing = await client.post(f"{NOTIFICATIONS}/999999/read", headers=hero.headers)
    assert missing.status_code == 404

    marked = await client.post(f"{NOTIFICATIONS}/read-all", headers=hero.headers)
    assert marked.status_code == 200 and marked.json() == {"count": 2}
    assert (await mine(client, hero, unread="true"))["items"] == []
    assert (await client.post(f"{NOTIFICATIONS}/read-all", headers=hero.headers)).json() == {
        "count": 0
    }
    assert (await mine(client, other))["unread"] == 1  # untouched


async def test_bad_list_parameters_are_named_and_strangers_are_refused(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    hero = await make_user()
    for params, parameter in [
        ({"unread": "maybe"}, "unread"),
        ({"kind": "order.eaten"}, "kind"),
        ({"user_id": "1"}, "user_id"),
        ({"sort": "title"}, "sort"),
    ]:
        answer = await client.get(NOTIFICATIONS, params=params, headers=hero.headers)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.json()["parameter"] == parameter
    assert (await client.get(NOTIFICATIONS)).status_code == 401
    assert (await client.post(f"{NOTIFICATIONS}/read-all")).status_code == 401
    assert await count_notifications(backend) == 0


def test_only_accepted_rejected_and_on_its_way_are_emailed_to_the_customer() -> None:
    def emailed(type_: str) -> list[str]:
        fields = {"fulfillment": "delivery", "courier_id": 9}
        made = drafts(StreamEvent(**{**_blank(type_), **fields}), "X")
        return [d.kind.value for d in made if d.kind in EMAILED and d.audience is Audience.CUSTOMER]

    assert emailed("accepted") == ["order.accepted"]
    assert emailed("rejected") == ["order.rejected"]
    assert emailed("picked_up") == emailed("status.out_for_delivery") == ["order.out_for_delivery"]
    for quiet in ("created", "status.ready", "delivered", "courier.assigned", "edited"):
        assert emailed(quiet) == []
    # An order nobody is the customer of (keyed in for a walk-in) notifies no customer.
    assert drafts(StreamEvent(**{**_blank("accepted"), "customer_id": None}), "X") == []


def _blank(type_: str) -> dict[str, Any]:
    import datetime as dt
    from decimal import Decimal

    return {
        "id": 1,
        "order_id": 1,
        "sequence": 1,
        "type": type_,
        "from_status": None,
        "to_status": None,
        "actor": "system",
        "actor_id": None,
        "data": None,
        "created_at": dt.datetime.now(dt.UTC),
        "restaurant_id": 1,
        "customer_id": 7,
        "courier_id": None,
        "waiter_id": None,
        "fulfillment": "pickup",
        "total": Decimal("1.00"),
        "currency": "EUR",
    }
