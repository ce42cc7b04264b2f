"""Editing a pending order (the coffee chain's brief): re-priced and re-checked like a new
order, written with an ``edited`` event, seen by the worker, refused once the worker has the
order, and consistent when edits race the worker."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from commissary.core.db import commit
from commissary.models import AuditLog, KitchenMode, Order, OrderEvent, OrderLine, Role
from commissary.orders import kitchen, service
from commissary.orders import repository as repo
from commissary.orders.kitchen import PROCESS_JOB
from commissary.orders.schemas import OrderCreate
from tests.conftest import Account, Backend, MakeUser
from tests.menu import add_waiter, make_menu
from tests.test_catalog import make_product
from tests.test_options import item, make_coffee
from tests.test_orders import ORDERS, history


async def pending_order(
    backend: Backend, account: Account, items: list[dict[str, Any]], **extra: Any
) -> int:
    """A pending order placed by ``account`` through placement's own code, committed without
    waking the worker (as when a wake is lost): on PostgreSQL it stays pending until the test
    runs the jobs."""
    data = OrderCreate.model_validate_json(json.dumps({"items": items, **extra}))
    async with backend.runtime.sessionmaker() as session:
        order = await service.place_order(session, account.user, data)
        await session.commit()
    return order.id


async def edit_pending(
    client: httpx.AsyncClient,
    backend: Backend,
    account: Account,
    items: list[dict[str, Any]],
    method: str,
    body: dict[str, Any],
    *,
    editor: Account | None = None,
    **extra: Any,
) -> tuple[int, httpx.Response]:
    """Place a pending order and edit it at once. The embedded mode's periodic sweep may take
    the order first; the edit is then rightly refused, and the test starts over with a new
    order (a refusal of every one is a failure)."""
    for _ in range(5):
        order_id = await pending_order(backend, account, items, **extra)
        response = await client.request(
            method, f"{ORDERS}/{order_id}", json=body, headers=(editor or account).headers
        )
        taken = response.status_code == 409 and response.json()["code"] == "order_locked"
        if backend.name == "postgres" or not taken:
            return order_id, response
    raise AssertionError("every order was taken by the worker before its edit")


async def events_of(backend: Backend, order_id: int) -> list[OrderEvent]:
    async with backend.runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.sequence)
        )
        return list(rows)


async def stored(backend: Backend, order_id: int) -> tuple[Order, list[OrderLine]]:
    async with backend.runtime.sessionmaker() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        lines = await session.scalars(
            select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.id)
        )
        return order, list(lines)


def plain(*items: tuple[int, int]) -> list[dict[str, Any]]:
    return [item(product_id, quantity) for product_id, quantity in items]


async def test_patched_items_are_repriced_with_their_options(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    hero = await make_user()
    o = coffee.options
    new_items = [
        item(coffee.latte, 1, o["Extra shot"], o["L"], o["Oat"]),
        item(coffee.espresso, 1),
        item(coffee.latte, 1, o["Oat"], o["L"], o["Extra shot"]),  # the same line again
    ]
    order_id, response = await edit_pending(
        client,
        backend,
        hero,
        [item(coffee.latte, 1, o["S"], o["Whole"])],
        "PATCH",
        {"items": new_items},
        note="to go",
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["id"] == order_id
    assert edited["status"] == "pending"
    assert edited["allowed_transitions"] == ["cancelled"]
    assert [
        (i["product_id"], i["quantity"], i["unit_price"], i["line_total"], len(i["options"]))
        for i in edited["items"]
    ] == [(coffee.latte, 2, "5.00", "10.00", 3), (coffee.espresso, 1, "2.00", "2.00", 0)]
    assert [f"{x['group']}: {x['name']}" for x in edited["items"][0]["options"]] == [
        "Size: L",
        "Milk: Oat",
        "Extras: Extra shot",
    ]
    assert edited["total"] == "12.00"
    assert edited["note"] == "to go"  # not given, kept
    order, lines = await stored(backend, order_id)
    assert order.total == Decimal("12.00") == sum(line.line_total for line in lines)
    assert len(lines) == 2
    events = await events_of(backend, order_id)
    assert [e.type for e in events][:2] == ["created", "edited"]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[1].actor == "customer"
    assert events[1].actor_id == hero.user.id
    assert events[1].data is not None
    assert events[1].data["fields"] == ["items"]
    assert (events[1].data["old_total"], events[1].data["new_total"]) == ("3.00", "12.00")
    assert [(i["product_name"], i["quantity"]) for i in events[1].data["old_items"]] == [
        ("Latte", 1)
    ]
    events_url = f"{ORDERS}/{order_id}/events"
    shown = (await client.get(events_url, headers=hero.headers)).json()["items"]
    assert shown[1]["type"] == "edited"
    assert shown[1]["data"]["new_total"] == "12.00"
    async with backend.runtime.sessionmaker() as session:
        audited = await session.scalar(
            select(AuditLog).where(
                AuditLog.action == "order.edit", AuditLog.entity_id == str(order_id)
            )
        )
    assert audited is not None
    assert audited.actor_id == hero.user.id


async def test_patch_changes_only_the_fields_given(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    change = {"note": "ring twice", "fulfillment": "delivery", "delivery_address": "1 Star Road"}
    order_id, response = await edit_pending(
        client, backend, hero, plain((menu.soup.id, 2)), "PATCH", change
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert {k: edited[k] for k in change} == change
    assert [(i["product_name"], i["quantity"]) for i in edited["items"]] == [("Solar Soup", 2)]
    assert edited["total"] == "15.00"
    event = (await events_of(backend, order_id))[1]
    assert event.type == "edited"
    assert event.data == {
        "fields": ["delivery_address", "fulfillment", "note"],
        "old_total": "15.00",
        "new_total": "15.00",
    }
    # A delivery needs an address, whether it comes from the body or the order.
    _, response = await edit_pending(
        client, backend, hero, plain((menu.soup.id, 1)), "PATCH", {"fulfillment": "delivery"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "delivery_address"
    # A null note clears it; a null where no value is allowed is refused.
    order_id, response = await edit_pending(
        client, backend, hero, plain((menu.soup.id, 1)), "PATCH", {"note": None}, note="hot"
    )
    assert response.status_code == 200
    assert response.json()["note"] is None
    for field in ("items", "fulfillment"):
        refused = await client.patch(
            f"{ORDERS}/{order_id}", json={field: None}, headers=hero.headers
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == field


async def test_put_replaces_the_whole_editable_part(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    order_id, response = await edit_pending(
        client,
        backend,
        hero,
        plain((menu.soup.id, 1)),
        "PUT",
        {"items": plain((menu.cake.id, 3)), "fulfillment": "pickup"},
        fulfillment="delivery",
        delivery_address="1 Star Road",
        note="hot",
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert (edited["fulfillment"], edited["delivery_address"], edited["note"]) == (
        "pickup",
        None,
        None,
    )
    assert [(i["product_name"], i["quantity"]) for i in edited["items"]] == [("Comet Cake", 3)]
    assert edited["total"] == "12.00"
    event = (await events_of(backend, order_id))[1]
    assert event.data is not None
    assert event.data["fields"] == ["delivery_address", "fulfillment", "items", "note"]
    # PUT wants the whole part: the items and the fulfillment, and an address for a delivery.
    for incomplete in (
        {"fulfillment": "pickup"},
        {"items": plain((menu.cake.id, 1))},
        {"items": plain((menu.cake.id, 1)), "fulfillment": "delivery"},
    ):
        refused = await client.put(f"{ORDERS}/{order_id}", json=incomplete, headers=hero.headers)
        assert refused.status_code == 422, refused.text


@pytest.mark.parametrize("status", ["awaiting_acceptance", "completed", "cancelled"])
async def test_an_order_past_pending_is_locked(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, status: str
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    mode = KitchenMode.MANUAL if status == "awaiting_acceptance" else KitchenMode.SIMULATED
    menu = await make_menu(backend, kitchen_mode=mode, owner_id=owner.user.id)
    hero = await make_user()
    placed = await client.post(
        ORDERS, json={"items": plain((menu.soup.id, 1))}, headers=hero.headers
    )
    order_id = placed.json()["id"]
    if status == "cancelled":
        assert (await client.post(f"{ORDERS}/{order_id}/cancel", headers=hero.headers)).is_success
    await backend.settle()
    assert (await client.get(f"{ORDERS}/{order_id}", headers=hero.headers)).json()[
        "status"
    ] == status
    before = await history(client, order_id, hero.headers)
    for account in (hero, owner):
        patched = await client.patch(
            f"{ORDERS}/{order_id}",
            json={"items": plain((menu.cake.id, 2))},
            headers=account.headers,
        )
        put = await client.put(
            f"{ORDERS}/{order_id}",
            json={"items": plain((menu.cake.id, 2)), "fulfillment": "pickup"},
            headers=account.headers,
        )
        for refused in (patched, put):
            assert refused.status_code == 409, refused.text
            assert refused.json()["code"] == "order_locked"
            assert refused.json()["current_status"] == status
    _, lines = await stored(backend, order_id)
    assert [(line.product_name, line.quantity) for line in lines] == [("Solar Soup", 1)]
    assert await history(client, order_id, hero.headers) == before


async def test_who_may_edit_an_order(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    menu = await make_menu(backend, owner_id=owner.user.id)
    hero, other = await make_user(), await make_user()
    stranger = await make_user(Role.RESTAURATEUR)
    order_id = await pending_order(backend, hero, plain((menu.soup.id, 1)))
    change = {"note": "no salt"}
    url = f"{ORDERS}/{order_id}"
    for account, status, code in (
        (other, 404, "order_not_found"),
        (stranger, 404, "order_not_found"),
        (await make_user(Role.SALES), 403, "forbidden"),
        (await make_user(Role.SUPPORT), 403, "forbidden"),
    ):
        for method in ("PATCH", "PUT"):
            body = change if method == "PATCH" else {"items": plain((menu.soup.id, 1))}
            body = {**body, "fulfillment": "pickup"} if method == "PUT" else body
            refused = await client.request(method, url, json=body, headers=account.headers)
            assert (refused.status_code, refused.json()["code"]) == (status, code)
    order, _ = await stored(backend, order_id)
    assert order.note is None
    # Nothing written by the refusals (on SQLite the in-process sweep may meanwhile take the
    # order, which moves its version but writes no `edited` event).
    assert "edited" not in [e.type for e in await events_of(backend, order_id)]
    # The restaurant's owner acts as staff; the waiter who keyed an order in may edit it.
    _, by_owner = await edit_pending(
        client, backend, hero, plain((menu.soup.id, 1)), "PATCH", change, editor=owner
    )
    assert by_owner.status_code == 200, by_owner.text
    waiter = await make_user(Role.WAITER)
    await add_waiter(backend, menu.restaurant.id, waiter.user.id)
    walk_in_id, by_waiter = await edit_pending(
        client,
        backend,
        waiter,
        plain((menu.soup.id, 1)),
        "PATCH",
        {"items": plain((menu.soup.id, 3))},
        customer_name="Table 4",
    )
    assert by_waiter.status_code == 200, by_waiter.text
    assert by_waiter.json()["total"] == "22.50"
    actors = [(e.actor, e.actor_id) for e in await events_of(backend, walk_in_id)]
    assert actors[1] == ("customer", waiter.user.id)


async def test_invalid_items_leave_the_order_unchanged(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    coffee = await make_coffee(client, make_user)
    grand = await make_product(client, coffee.owner, coffee.restaurant_id, price="400.00")
    elsewhere = await make_coffee(client, make_user, slug="elsewhere")
    hero = await make_user()
    o = coffee.options
    first = [item(coffee.latte, 1, o["S"], o["Whole"]), item(coffee.espresso, 2)]
    refusals: list[tuple[list[dict[str, Any]], int, str]] = [
        ([item(999_999, 1)], 422, "unknown_product"),
        ([item(elsewhere.espresso, 1)], 422, "restaurant_mismatch"),
        ([item(coffee.latte, 1, o["Whole"])], 422, "option_choice_count"),
        ([item(coffee.espresso, 1, o["S"])], 422, "unknown_option"),
        ([item(coffee.espresso, 60), item(coffee.espresso, 60)], 422, "quantity_too_large"),
        ([item(grand["id"], 30)], 422, "order_total_too_large"),
    ]
    for items, status, code in refusals:
        order_id, refused = await edit_pending(
            client, backend, hero, first, "PATCH", {"items": items, "note": "changed"}
        )
        assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
        order, lines = await stored(backend, order_id)
        assert order.note is None
        assert order.total == Decimal("7.00")
        assert [(line.product_id, line.quantity) for line in lines] == [
            (coffee.latte, 1),
            (coffee.espresso, 2),
        ]
        assert "edited" not in [e.type for e in await events_of(backend, order_id)]


async def test_the_worker_checks_the_edited_lines(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user(allergies=["peanuts"])
    risky_id, response = await edit_pending(
        client,
        backend,
        hero,
        plain((menu.soup.id, 1)),
        "PATCH",
        {"items": plain((menu.soup.id, 1), (menu.noodles.id, 1))},
    )
    assert response.status_code == 200, response.text
    safe_id, response = await edit_pending(
        client,
        backend,
        hero,
        plain((menu.noodles.id, 1)),
        "PUT",
        {"items": plain((menu.cake.id, 1)), "fulfillment": "pickup"},
    )
    assert response.status_code == 200, response.text
    # The edit woke the order processing (no sweep needed).
    await backend.run_jobs()
    for order_id in (risky_id, safe_id):
        order, _ = await stored(backend, order_id)
        assert order.status != "pending"
    await backend.settle()
    risky = (await client.get(f"{ORDERS}/{risky_id}", headers=hero.headers)).json()
    assert risky["status"] == "cancelled"
    assert 'line 2 "Nebula Noodles": ingredient "Peanuts "' in risky["message"]
    assert "Solar Soup" not in risky["message"]
    safe = (await client.get(f"{ORDERS}/{safe_id}", headers=hero.headers)).json()
    assert safe["status"] == "completed"
    assert await history(client, safe_id, hero.headers) == [
        "created",
        "edited",
        "status.in_progress",
        "status.completed",
    ]


async def test_an_edit_waiting_for_the_worker_finds_the_order_taken(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    for _ in range(5):  # the embedded sweep may claim the order before this worker does
        order_id = await pending_order(backend, hero, plain((menu.soup.id, 1)))
        async with backend.runtime.sessionmaker() as session:
            claimed = await repo.claim_pending(session, 10)  # holds the row lock
            if order_id not in [order.id for order in claimed]:
                continue
            body = {"items": plain((menu.noodles.id, 1))}
            editing = asyncio.create_task(
                client.patch(f"{ORDERS}/{order_id}", json=body, headers=hero.headers)
            )
            await asyncio.sleep(0.2)  # the edit reaches the lock and waits there
            await kitchen.process_orders(session, claimed)
            await commit(session)
        refused = await editing
        assert refused.status_code == 409, refused.text
        assert (refused.json()["code"], refused.json()["current_status"]) == (
            "order_locked",
            "in_progress",
        )
        _, lines = await stored(backend, order_id)
        assert [line.product_name for line in lines] == ["Solar Soup"]
        return
    raise AssertionError("the sweep claimed every order first")


EDITORS = 4


async def test_edits_racing_the_worker_leave_one_consistent_order(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    order_id = await pending_order(backend, hero, plain((menu.soup.id, 1)))
    url = f"{ORDERS}/{order_id}"

    async def edit(quantity: int) -> httpx.Response:
        body = {"items": plain((menu.soup.id, quantity), (menu.cheap.id, quantity))}
        return await client.patch(url, json=body, headers=hero.headers)

    async def editor(first: int) -> list[httpx.Response]:
        """Edit after edit (each to quantities no other edit uses) until the order is taken."""
        answers = []
        for quantity in range(first, first + 40, EDITORS):
            answers.append(await edit(quantity))
            if answers[-1].status_code != 200:
                break
        return answers

    async def worker() -> None:
        for _ in range(500):
            await backend.run_job(PROCESS_JOB)
            order, _ = await stored(backend, order_id)
            if order.status != "pending":
                return
            await asyncio.sleep(0.01)

    *runs, _ = await asyncio.gather(*(editor(2 + n) for n in range(EDITORS)), worker())
    answers = [answer for run in runs for answer in run]
    assert {a.status_code for a in answers} <= {200, 409}
    assert all(a.json()["code"] == "order_locked" for a in answers if a.status_code == 409)
    accepted = [a.json() for a in answers if a.status_code == 200]
    for answer in accepted:
        assert Decimal(answer["total"]) == sum(Decimal(i["line_total"]) for i in answer["items"])
    order, lines = await stored(backend, order_id)
    assert order.status != "pending"  # the worker took it in the end
    assert order.total == sum(line.line_total for line in lines)
    assert all(line.line_total == line.unit_price * line.quantity for line in lines)
    assert len({line.quantity for line in lines}) == 1
    events = await events_of(backend, order_id)
    types = [e.type for e in events]
    # Every accepted edit came before the worker took the order, and none after.
    assert types[: len(accepted) + 2] == [
        "created",
        *["edited"] * len(accepted),
        "status.in_progress",
    ]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert order.version == len(events)
    if accepted:
        last = events[len(accepted)]
        assert last.data is not None
        assert last.data["new_total"] == f"{order.total:.2f}"
    await backend.settle()
    async with backend.runtime.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(OrderLine).where(OrderLine.order_id == order_id)
        )
    # Each edit has two lines; without one (the worker was first) the order keeps its one.
    assert count == (2 if accepted else 1)
