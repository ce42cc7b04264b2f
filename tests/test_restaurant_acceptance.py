"""Manual kitchens: the restaurant accepts or rejects each new order, the sweep chases the
orders nobody answered, and a restaurant can pause taking orders."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select, update

from commissary.core.db import utcnow
from commissary.models import KitchenMode, Order, OrderEvent, Role
from tests.conftest import Account, Backend, MakeUser
from tests.menu import Menu, add_waiter, make_menu
from tests.test_order_edits import pending_order

ORDERS = "/api/v1/orders"
RESTAURANTS = "/api/v1/restaurants"
ADDRESS = "Deck 7, Knowhere"


def body(product_id: int, **extra: object) -> dict[str, object]:
    return {"items": [{"product_id": product_id, "quantity": 1}], **extra}


async def events(
    client: httpx.AsyncClient, order_id: int, headers: dict[str, str]
) -> list[dict[str, object]]:
    response = await client.get(
        f"{ORDERS}/{order_id}/events", params={"limit": 100}, headers=headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    assert [e["sequence"] for e in items] == list(range(1, len(items) + 1))
    return items


async def types(client: httpx.AsyncClient, order_id: int, headers: dict[str, str]) -> list[object]:
    return [e["type"] for e in await events(client, order_id, headers)]


async def manual_kitchen(backend: Backend, make_user: MakeUser) -> tuple[Menu, Account, Account]:
    """A manual kitchen, its owner and a hero who orders there."""
    owner = await make_user(Role.RESTAURATEUR)
    menu = await make_menu(backend, kitchen_mode=KitchenMode.MANUAL, owner_id=owner.user.id)
    return menu, owner, await make_user()


async def awaiting(
    client: httpx.AsyncClient, backend: Backend, hero: Account, menu: Menu, **extra: object
) -> int:
    """Place an order and let the worker check it: it awaits the restaurant."""
    placed = await client.post(ORDERS, json=body(menu.soup.id, **extra), headers=hero.headers)
    assert placed.status_code == 202, placed.text
    await backend.settle()
    order = (await client.get(f"{ORDERS}/{placed.json()['id']}", headers=hero.headers)).json()
    assert order["status"] == "awaiting_acceptance"
    return int(order["id"])


def parse(value: object) -> dt.datetime:
    assert isinstance(value, str)
    return dt.datetime.fromisoformat(value)


async def test_accepted_order_shows_the_customer_when_it_will_be_ready(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu, owner, hero = await manual_kitchen(backend, make_user)
    order_id = await awaiting(
        client, backend, hero, menu, fulfillment="delivery", delivery_address=ADDRESS
    )
    waiting = (await client.get(f"{ORDERS}/{order_id}", headers=owner.headers)).json()
    assert waiting["allowed_transitions"] == ["in_progress", "cancelled"]
    assert (waiting["accepted_at"], waiting["ready_by"]) == (None, None)
    seen = (await client.get(f"{ORDERS}/{order_id}", headers=hero.headers)).json()
    assert seen["allowed_transitions"] == ["cancelled"]

    accepted = await client.post(
        f"{ORDERS}/{order_id}/accept", json={"prep_minutes": 25}, headers=owner.headers
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "in_progress"

    mine = (await client.get(f"{ORDERS}/{order_id}", headers=hero.headers)).json()
    assert mine["status"] == "in_progress"
    accepted_at, ready_by = parse(mine["accepted_at"]), parse(mine["ready_by"])
    assert ready_by - accepted_at == dt.timedelta(minutes=25)
    history = await events(client, order_id, hero.headers)
    assert [e["type"] for e in history] == [
        "created",
        "status.awaiting_acceptance",
        "accepted",
        "delivery.offered",
    ]
    accept_event = history[2]
    assert (accept_event["from_status"], accept_event["to_status"]) == (
        "awaiting_acceptance",
        "in_progress",
    )
    assert accept_event["actor"] == "staff"
    assert accept_event["actor_id"] == owner.user.id
    assert accept_event["data"] == {"prep_minutes": 25, "ready_by": ready_by.isoformat()}

    ready = await client.post(
        f"{ORDERS}/{order_id}/status", json={"status": "ready"}, headers=owner.headers
    )
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready_by"] == mine["ready_by"]


async def test_accepting_without_a_time_promises_none_and_offers_no_pickup(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu, _owner, hero = await manual_kitchen(backend, make_user)
    admin = await make_user(Role.ADMIN)
    order_id = await awaiting(client, backend, hero, menu)
    accepted = await client.post(f"{ORDERS}/{order_id}/accept", headers=admin.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["accepted_at"] is not None
    assert accepted.json()["ready_by"] is None
    history = await events(client, order_id, hero.headers)
    assert [e["type"] for e in history] == ["created", "status.awaiting_acceptance", "accepted"]
    assert history[-1]["data"] == {"prep_minutes": None, "ready_by": None}


async def test_rejected_order_is_cancelled_with_the_reason_shown(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu, owner, hero = await manual_kitchen(backend, make_user)
    order_id = await awaiting(client, backend, hero, menu)
    url = f"{ORDERS}/{order_id}/reject"
    for bad in (None, {}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": "a\x00b"}):
        refused = await client.post(url, json=bad, headers=owner.headers)
        assert refused.status_code == 422, (bad, refused.text)
    rejected = await client.post(
        url, json={"reason": "  <b>Out of</b> sunroot today  "}, headers=owner.headers
    )
    assert rejected.status_code == 200, rejected.text
    mine = (await client.get(f"{ORDERS}/{order_id}", headers=hero.headers)).json()
    assert mine["status"] == "cancelled"
    assert mine["message"] == "Out of sunroot today"
    assert mine["accepted_at"] is None
    history = await events(client, order_id, hero.headers)
    assert [e["type"] for e in history] == ["created", "status.awaiting_acceptance", "rejected"]
    assert history[-1]["to_status"] == "cancelled"
    assert history[-1]["data"] == {"reason": "Out of sunroot today"}


async def test_only_the_restaurants_owners_and_admins_accept_or_reject(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu, owner, hero = await manual_kitchen(backend, make_user)
    stranger = await make_user(Role.RESTAURATEUR)
    await make_menu(
        backend, slug="other-place", kitchen_mode=KitchenMode.MANUAL, owner_id=stranger.user.id
    )
    waiter = await make_user(Role.WAITER)
    await add_waiter(backend, menu.restaurant.id, waiter.user.id)
    keyed_in = await client.post(
        ORDERS, json=body(menu.soup.id, customer_name="Drax"), headers=waiter.headers
    )
    assert keyed_in.status_code == 202, keyed_in.text
    order_id = await awaiting(client, backend, hero, menu)
    refusals: list[tuple[Account, int, int, str]] = [
        (stranger, order_id, 404, "order_not_found"),
        (hero, order_id, 403, "not_restaurant_owner"),
        (await make_user(Role.SALES), order_id, 403, "forbidden"),
        (waiter, int(keyed_in.json()["id"]), 403, "not_restaurant_owner"),
    ]
    for account, target, status, code in refusals:
        for action, payload in (("accept", {}), ("reject", {"reason": "no"})):
            answer = await client.post(
                f"{ORDERS}/{target}/{action}", json=payload, headers=account.headers
            )
            assert (answer.status_code, answer.json()["code"]) == (status, code), (
                account.user.role,
                action,
            )
    # The hero still sees the order as it was, and may cancel it while it waits.
    assert await types(client, order_id, hero.headers) == ["created", "status.awaiting_acceptance"]
    cancelled = await client.post(f"{ORDERS}/{order_id}/cancel", headers=hero.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (await types(client, order_id, hero.headers))[-1] == "status.cancelled"
    assert (await client.post(f"{ORDERS}/{order_id}/accept", headers=owner.headers)).json()[
        "code"
    ] == "order_not_awaiting_acceptance"


async def _refused_while_pending(
    client: httpx.AsyncClient, backend: Backend, owner: Account, hero: Account, menu: Menu
) -> None:
    """The restaurant cannot accept an order the worker has not checked yet. The embedded
    mode's periodic sweep may check it first; the test then starts over with a new order."""
    for _ in range(5):
        order_id = await pending_order(backend, hero, [{"product_id": menu.soup.id, "quantity": 1}])
        early = await client.post(f"{ORDERS}/{order_id}/accept", headers=owner.headers)
        if early.status_code == 409 and early.json()["current_status"] == "pending":
            assert early.json()["code"] == "order_not_awaiting_acceptance"
            return
        assert backend.name == "sqlite", early.text
    raise AssertionError("every order was checked by the worker before it could be accepted")


async def test_accept_and_reject_in_the_wrong_state_are_409(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu, owner, hero = await manual_kitchen(backend, make_user)
    await _refused_while_pending(client, backend, owner, hero, menu)
    order_id = await awaiting(client, backend, hero, menu)
    out_of_range = await client.post(
        f"{ORDERS}/{order_id}/accept", json={"prep_minutes": 0}, headers=owner.headers
    )
    too_long = await client.post(
        f"{ORDERS}/{order_id}/accept", json={"prep_minutes": 241}, headers=owner.headers
    )
    assert (out_of_range.status_code, too_long.status_code) == (422, 422)
    first = await client.post(
        f"{ORDERS}/{order_id}/accept", json={"prep_minutes": 240}, headers=owner.headers
    )
    assert first.status_code == 200, first.text
    for action, payload in (("accept", {}), ("reject", {"reason": "changed our mind"})):
        again = await client.post(
            f"{ORDERS}/{order_id}/{action}", json=payload, headers=owner.headers
        )
        assert (again.status_code, again.json()["code"]) == (409, "order_not_awaiting_acceptance")
        assert again.json()["current_status"] == "in_progress"
    # A simulated kitchen accepts on its own: nothing is left for the restaurant to accept.
    simulated = await make_menu(backend, slug="auto-place", owner_id=owner.user.id)
    auto = await client.post(ORDERS, json=body(simulated.soup.id), headers=hero.headers)
    await backend.settle()
    late = await client.post(f"{ORDERS}/{auto.json()['id']}/accept", headers=owner.headers)
    assert (late.status_code, late.json()["code"]) == (409, "order_not_awaiting_acceptance")
    assert await types(client, order_id, hero.headers) == [
        "created",
        "status.awaiting_acceptance",
        "accepted",
    ]


async def test_status_endpoint_on_an_awaiting_order_accepts_or_rejects(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu, owner, hero = await manual_kitchen(backend, make_user)
    first = await awaiting(client, backend, hero, menu)
    second = await awaiting(client, backend, hero, menu)
    moved = await client.post(
        f"{ORDERS}/{first}/status", json={"status": "in_progress"}, headers=owner.headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["accepted_at"] is not None
    cancelled = await client.post(f"{ORDERS}/{second}/cancel", headers=owner.headers)
    assert cancelled.json()["message"] == "Rejected by the restaurant."
    assert (await types(client, first, hero.headers))[-1] == "accepted"
    assert (await types(client, second, hero.headers))[-1] == "rejected"


async def test_manual_kitchen_cancels_an_allergen_clash_without_asking_the_restaurant(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    menu = await make_menu(backend, kitchen_mode=KitchenMode.MANUAL, owner_id=owner.user.id)
    hero = await make_user(allergies=["peanuts"])
    placed = await client.post(ORDERS, json=body(menu.noodles.id), headers=hero.headers)
    await backend.settle()
    order = (await client.get(f"{ORDERS}/{placed.json()['id']}", headers=hero.headers)).json()
    assert order["status"] == "cancelled"
    assert "peanuts" in order["message"].lower()
    assert await types(client, order["id"], hero.headers) == ["created", "status.cancelled"]


async def test_simulated_kitchen_accepts_on_its_own_and_offers_a_delivery(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    placed = await client.post(
        ORDERS,
        json=body(menu.soup.id, fulfillment="delivery", delivery_address=ADDRESS),
        headers=hero.headers,
    )
    await backend.settle()
    order = (await client.get(f"{ORDERS}/{placed.json()['id']}", headers=hero.headers)).json()
    assert order["status"] == "ready"
    assert order["accepted_at"] is not None
    assert await types(client, order["id"], hero.headers) == [
        "created",
        "status.in_progress",
        "delivery.offered",
        "status.ready",
    ]


def _set(backend: Backend, monkeypatch: pytest.MonkeyPatch, **values: object) -> None:
    changed = backend.runtime.settings.model_copy(update=values)
    monkeypatch.setattr(backend.runtime, "settings", changed)


async def _wait_since(backend: Backend, order_id: int, seconds: float) -> None:
    """Make the order look as if it had waited ``seconds`` for the restaurant."""
    async with backend.runtime.sessionmaker() as session:
        await session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(awaiting_since_at=utcnow() - dt.timedelta(seconds=seconds))
        )
        await session.commit()


async def test_unaccepted_order_raises_one_alert_then_is_cancelled_with_a_reason(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _set(backend, monkeypatch, accept_timeout=60, accept_cancel_after=120)
    menu, owner, hero = await manual_kitchen(backend, make_user)
    order_id = await awaiting(client, backend, hero, menu)
    fresh = await awaiting(client, backend, hero, menu)
    answered = await awaiting(client, backend, hero, menu)
    assert (
        await client.post(f"{ORDERS}/{answered}/accept", headers=owner.headers)
    ).status_code == 200
    await _wait_since(backend, answered, 3600)
    await _wait_since(backend, order_id, 59)
    await backend.run_job("orders.sweep")
    assert await types(client, order_id, hero.headers) == ["created", "status.awaiting_acceptance"]

    await _wait_since(backend, order_id, 61)
    for _ in range(2):
        await backend.run_job("orders.sweep")
    history = await events(client, order_id, hero.headers)
    assert [e["type"] for e in history] == [
        "created",
        "status.awaiting_acceptance",
        "acceptance.overdue",
    ]
    assert history[-1]["to_status"] == "awaiting_acceptance"
    assert history[-1]["actor"] == "system"
    alert = history[-1]["data"]
    assert isinstance(alert, dict)
    assert alert["accept_timeout"] == 60
    assert alert["waiting_seconds"] >= 61
    still = (await client.get(f"{ORDERS}/{order_id}", headers=owner.headers)).json()
    assert still["status"] == "awaiting_acceptance"

    await _wait_since(backend, order_id, 181)
    for _ in range(2):
        await backend.run_job("orders.sweep")
    mine = (await client.get(f"{ORDERS}/{order_id}", headers=hero.headers)).json()
    assert mine["status"] == "cancelled"
    assert mine["message"] == (
        "Cancelled: the restaurant did not accept the order within 3 minutes."
    )
    history = await events(client, order_id, hero.headers)
    assert [e["type"] for e in history][2:] == ["acceptance.overdue", "status.cancelled"]
    assert history[-1]["actor"] == "system"
    assert history[-1]["data"] == {"reason": mine["message"]}
    # The order placed just now has not waited long enough for anything, and the accepted
    # one no longer waits.
    assert await types(client, fresh, hero.headers) == ["created", "status.awaiting_acceptance"]
    assert await types(client, answered, hero.headers) == [
        "created",
        "status.awaiting_acceptance",
        "accepted",
    ]


async def test_an_order_found_long_overdue_gets_its_alert_before_its_cancellation(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _set(backend, monkeypatch, accept_timeout=60, accept_cancel_after=30)
    menu, _owner, hero = await manual_kitchen(backend, make_user)
    order_id = await awaiting(client, backend, hero, menu)
    await _wait_since(backend, order_id, 3600)
    await backend.run_job("orders.sweep")
    assert await types(client, order_id, hero.headers) == [
        "created",
        "status.awaiting_acceptance",
        "acceptance.overdue",
        "status.cancelled",
    ]
    message = (await client.get(f"{ORDERS}/{order_id}", headers=hero.headers)).json()["message"]
    assert message == "Cancelled: the restaurant did not accept the order within 90 seconds."


async def test_concurrent_sweeps_alert_and_cancel_each_order_once(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _set(backend, monkeypatch, accept_timeout=60, accept_cancel_after=60)
    menu, _owner, hero = await manual_kitchen(backend, make_user)
    placed = [
        (await client.post(ORDERS, json=body(menu.soup.id), headers=hero.headers)).json()["id"]
        for _ in range(6)
    ]
    await backend.settle()
    for order_id in placed[:3]:
        await _wait_since(backend, order_id, 90)  # overdue
    for order_id in placed[3:]:
        await _wait_since(backend, order_id, 150)  # past both delays

    async def count(kind: Callable[[], object]) -> int:
        async with backend.runtime.sessionmaker() as session:
            return int(await session.scalar(kind()) or 0)  # type: ignore[call-overload]

    def alerts() -> object:
        return (
            select(func.count())
            .select_from(OrderEvent)
            .where(OrderEvent.type == "acceptance.overdue")
        )

    def cancellations() -> object:
        return (
            select(func.count())
            .select_from(OrderEvent)
            .where(OrderEvent.type == "status.cancelled")
        )

    for _ in range(2):
        await asyncio.gather(*(backend.run_job("orders.sweep") for _ in range(3)))
        assert (await count(alerts), await count(cancellations)) == (6, 3)
    for order_id in placed:
        history = await types(client, order_id, hero.headers)
        assert history.count("acceptance.overdue") == 1


async def test_a_paused_restaurant_refuses_orders_until_unpaused(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu, owner, hero = await manual_kitchen(backend, make_user)
    stranger = await make_user(Role.RESTAURATEUR)
    url = f"{RESTAURANTS}/{menu.restaurant.id}"
    assert (await client.get(url)).json()["is_accepting_orders"] is True
    foreign = await client.patch(url, json={"is_accepting_orders": False}, headers=stranger.headers)
    assert foreign.status_code == 403, foreign.text
    null = await client.patch(url, json={"is_accepting_orders": None}, headers=owner.headers)
    assert null.status_code == 422, null.text
    paused = await client.patch(url, json={"is_accepting_orders": False}, headers=owner.headers)
    assert paused.status_code == 200, paused.text
    assert paused.json()["is_accepting_orders"] is False
    assert (await client.get(url)).json()["is_accepting_orders"] is False

    refused = await client.post(ORDERS, json=body(menu.soup.id), headers=hero.headers)
    assert (refused.status_code, refused.json()["code"]) == (409, "restaurant_paused")
    added = await client.post(
        "/api/v1/cart/items", json={"product_id": menu.soup.id}, headers=hero.headers
    )
    assert added.status_code == 200, added.text
    cart = (await client.get("/api/v1/cart", headers=hero.headers)).json()
    assert cart["can_checkout"] is False
    assert "paused" in cart["items"][0]["problem"]
    checkout = await client.post("/api/v1/cart/checkout", json={}, headers=hero.headers)
    assert (checkout.status_code, checkout.json()["code"]) == (409, "restaurant_paused")
    async with backend.runtime.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0

    resumed = await client.patch(url, json={"is_accepting_orders": True}, headers=owner.headers)
    assert resumed.json()["is_accepting_orders"] is True
    checkout = await client.post("/api/v1/cart/checkout", json={}, headers=hero.headers)
    assert checkout.status_code == 202, checkout.text
    placed = await client.post(ORDERS, json=body(menu.soup.id), headers=hero.headers)
    assert placed.status_code == 202, placed.text
