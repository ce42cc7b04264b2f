"""Couriers: offered deliveries, the first courier wins, pickup, the handover code that only
the customer sees, wrong codes locked out, and the courier's position on the way."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from commissary.models import Role
from tests.conftest import Account, Backend, MakeUser
from tests.menu import Menu, make_menu

ORDERS = "/api/v1/orders"
DELIVERIES = "/api/v1/deliveries"
ADDRESS = "Deck 7, Knowhere"


async def place_delivery(
    client: httpx.AsyncClient, menu: Menu, customer: Account, *, fulfillment: str = "delivery"
) -> dict[str, Any]:
    extra = {"delivery_address": ADDRESS} if fulfillment == "delivery" else {}
    placed = await client.post(
        ORDERS,
        json={
            "items": [{"product_id": menu.soup.id, "quantity": 2}],
            "fulfillment": fulfillment,
            **extra,
        },
        headers=customer.headers,
    )
    assert placed.status_code == 202, placed.text
    order: dict[str, Any] = placed.json()
    return order


async def available_ids(client: httpx.AsyncClient, courier: Account) -> list[int]:
    response = await client.get(f"{DELIVERIES}/available", headers=courier.headers)
    assert response.status_code == 200, response.text
    return [item["order_id"] for item in response.json()["items"]]


async def order_of(client: httpx.AsyncClient, order_id: int, who: Account) -> dict[str, Any]:
    response = await client.get(f"{ORDERS}/{order_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


async def events_of(client: httpx.AsyncClient, order_id: int, who: Account) -> list[dict[str, Any]]:
    response = await client.get(
        f"{ORDERS}/{order_id}/events", params={"limit": 100}, headers=who.headers
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["items"]
    return events


def act(order_id: int, action: str) -> str:
    return f"{DELIVERIES}/{order_id}/{action}"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.fixture
async def world(backend: Backend, make_user: MakeUser) -> dict[str, Any]:
    owner = await make_user(Role.RESTAURATEUR)
    menu = await make_menu(backend, owner_id=owner.user.id, address="12 Orbit Lane")
    return {
        "menu": menu,
        "owner": owner,
        "customer": await make_user(full_name="Peter Quill"),
        "courier": await make_user(Role.COURIER),
        "other": await make_user(Role.COURIER),
        "admin": await make_user(Role.ADMIN),
    }


async def ready_delivery(
    client: httpx.AsyncClient, backend: Backend, world: dict[str, Any]
) -> dict[str, Any]:
    """A delivery order the simulated kitchen has accepted (offered) and cooked (ready)."""
    order = await place_delivery(client, world["menu"], world["customer"])
    await backend.settle()
    return order


async def test_a_delivery_goes_from_offer_to_handover_with_the_customers_code(
    client: httpx.AsyncClient, backend: Backend, world: dict[str, Any]
) -> None:
    customer, courier, other = world["customer"], world["courier"], world["other"]
    order = await ready_delivery(client, backend, world)
    pickup_order = await place_delivery(client, world["menu"], customer, fulfillment="pickup")
    await backend.settle()

    offers = (await client.get(f"{DELIVERIES}/available", headers=courier.headers)).json()
    assert [item["order_id"] for item in offers["items"]] == [order["id"]]
    offer = offers["items"][0]
    assert offer["restaurant_address"] == "12 Orbit Lane"
    assert offer["delivery_address"] == ADDRESS
    assert offer["total"] == "15.00"
    assert offer["status"] == "ready"
    assert offer["customer_name"] is None
    assert "handover_code" not in offer
    assert pickup_order["id"] not in await available_ids(client, courier)

    accepted = await client.post(act(order["id"], "accept"), headers=courier.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["courier_id"] == courier.user.id
    assert accepted.json()["customer_name"] == "Peter Quill"
    assert await available_ids(client, other) == []

    seen = await order_of(client, order["id"], customer)
    code = seen["handover_code"]
    assert len(code) == 6 and code.isdigit()
    assert seen["handover_qr"] == f"commissary:handover:{order['id']}:{code}"
    assert seen["courier_id"] == courier.user.id

    picked = await client.post(act(order["id"], "pickup"), headers=courier.headers)
    assert picked.status_code == 200, picked.text
    assert picked.json()["status"] == "out_for_delivery"
    located = await client.post(
        act(order["id"], "location"), json={"lat": 48.8566, "lon": 2.3522}, headers=courier.headers
    )
    assert located.status_code == 200, located.text
    position = (await order_of(client, order["id"], customer))["courier_position"]
    assert (position["lat"], position["lon"]) == (48.8566, 2.3522)

    done = await client.post(
        act(order["id"], "complete"), json={"handover_code": code}, headers=courier.headers
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    final = await order_of(client, order["id"], customer)
    assert final["status"] == "completed"
    assert final["completed_time"] is not None
    assert final["courier_position"] is None
    events = await events_of(client, order["id"], customer)
    assert [e["type"] for e in events] == [
        "created",
        "status.in_progress",
        "delivery.offered",
        "status.ready",
        "courier.assigned",
        "picked_up",
        "courier.location",
        "delivered",
    ]
    assert events[4]["data"] == {"courier_id": courier.user.id}
    assert (events[5]["from_status"], events[5]["to_status"]) == ("ready", "out_for_delivery")
    assert (events[7]["actor"], events[7]["to_status"]) == ("courier", "completed")
    assert events[6]["data"] is None  # the position is dropped with the delivery
    mine = (await client.get(DELIVERIES, headers=courier.headers)).json()
    assert [(d["order_id"], d["status"]) for d in mine["items"]] == [(order["id"], "completed")]
    assert (await client.get(DELIVERIES, headers=other.headers)).json()["total"] == 0


async def test_two_couriers_racing_for_one_offer_one_wins(
    client: httpx.AsyncClient, backend: Backend, world: dict[str, Any], make_user: MakeUser
) -> None:
    order = await ready_delivery(client, backend, world)
    couriers = [world["courier"], world["other"], *[await make_user(Role.COURIER) for _ in "ab"]]
    answers = await asyncio.gather(
        *(client.post(act(order["id"], "accept"), headers=c.headers) for c in couriers)
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 409, 409, 409], [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"delivery_taken"}
    (winner,) = [c for c, a in zip(couriers, answers, strict=True) if a.status_code == 200]
    seen = await order_of(client, order["id"], world["customer"])
    assert seen["courier_id"] == winner.user.id
    types = [e["type"] for e in await events_of(client, order["id"], world["customer"])]
    assert types.count("courier.assigned") == 1


async def test_a_refused_offer_is_hidden_and_a_released_one_is_offered_again(
    client: httpx.AsyncClient, backend: Backend, world: dict[str, Any], make_user: MakeUser
) -> None:
    courier, other = world["courier"], world["other"]
    third = await make_user(Role.COURIER)
    order = await ready_delivery(client, backend, world)

    refused = await client.post(act(order["id"], "refuse"), headers=courier.headers)
    assert refused.status_code == 204, refused.text
    assert await available_ids(client, courier) == []
    assert await available_ids(client, other) == [order["id"]]
    again = await client.post(act(order["id"], "refuse"), headers=courier.headers)
    assert again.status_code == 204

    assert (await client.post(act(order["id"], "accept"), headers=other.headers)).status_code == 200
    assert await available_ids(client, third) == []
    taken = await client.post(act(order["id"], "refuse"), headers=third.headers)
    assert (taken.status_code, taken.json()["code"]) == (409, "delivery_taken")
    released = await client.post(act(order["id"], "refuse"), headers=other.headers)
    assert released.status_code == 204
    assert await available_ids(client, third) == [order["id"]]
    assert await available_ids(client, other) == []
    seen = await order_of(client, order["id"], world["customer"])
    assert seen["courier_id"] is None
    types = [e["type"] for e in await events_of(client, order["id"], world["customer"])]
    assert types[-3:] == ["courier.assigned", "courier.released", "delivery.offered"]

    assert (await client.post(act(order["id"], "accept"), headers=third.headers)).status_code == 200
    assert (await client.post(act(order["id"], "pickup"), headers=third.headers)).status_code == 200
    late = await client.post(act(order["id"], "refuse"), headers=third.headers)
    assert (late.status_code, late.json()["code"]) == (409, "delivery_not_releasable")


async def test_five_wrong_codes_lock_the_handover_even_for_the_right_code(
    client: httpx.AsyncClient, backend: Backend, world: dict[str, Any]
) -> None:
    courier, customer, owner = world["courier"], world["customer"], world["owner"]
    order = await ready_delivery(client, backend, world)
    await client.post(act(order["id"], "accept"), headers=courier.headers)
    await client.post(act(order["id"], "pickup"), headers=courier.headers)
    await client.post(
        act(order["id"], "location"), json={"lat": 1, "lon": 2}, headers=courier.headers
    )
    code = (await order_of(client, order["id"], customer))["handover_code"]

    for left in (4, 3, 2, 1):
        answer = await client.post(
            act(order["id"], "complete"),
            json={"handover_code": wrong(code)},
            headers=courier.headers,
        )
        assert answer.status_code == 422, answer.text
        assert (answer.json()["code"], answer.json()["attempts_left"]) == (
            "handover_code_wrong",
            left,
        )
    fifth = await client.post(
        act(order["id"], "complete"), json={"handover_code": wrong(code)}, headers=courier.headers
    )
    assert (fifth.status_code, fifth.json()["code"]) == (423, "handover_locked")
    right = await client.post(
        act(order["id"], "complete"), json={"handover_code": code}, headers=courier.headers
    )
    assert (right.status_code, right.json()["code"]) == (423, "handover_locked")
    assert (await order_of(client, order["id"], customer))["status"] == "out_for_delivery"
    mine = (await client.get(DELIVERIES, headers=courier.headers)).json()["items"][0]
    assert (mine["is_handover_locked"], mine["handover_attempts_left"]) == (True, 0)
    malformed = await client.post(
        act(order["id"], "complete"), json={"handover_code": "12345"}, headers=courier.headers
    )
    assert malformed.status_code == 422

    # The restaurant settles a locked handover; the positions go with the delivery.
    closed = await client.post(
        f"{ORDERS}/{order['id']}/status", json={"status": "completed"}, headers=owner.headers
    )
    assert closed.status_code == 200, closed.text
    assert (await order_of(client, order["id"], customer))["courier_position"] is None
    events = await events_of(client, order["id"], customer)
    assert [e["data"] for e in events if e["type"] == "courier.location"] == [None]


async def test_the_position_and_the_code_are_the_customers_alone(
    client: httpx.AsyncClient, backend: Backend, world: dict[str, Any], monkeypatch: Any
) -> None:
    courier, customer = world["courier"], world["customer"]
    order = await ready_delivery(client, backend, world)
    await client.post(act(order["id"], "accept"), headers=courier.headers)
    early = await client.post(
        act(order["id"], "location"), json={"lat": 1.5, "lon": 2.5}, headers=courier.headers
    )
    assert (early.status_code, early.json()["code"]) == (409, "not_out_for_delivery")
    await client.post(act(order["id"], "pickup"), headers=courier.headers)
    for bad in (
        {"lat": 90.5, "lon": 0},
        {"lat": 0, "lon": -181},
        {"lat": "1", "lon": 0},
        {"lat": 1},
    ):
        refused = await client.post(act(order["id"], "location"), json=bad, headers=courier.headers)
        assert refused.status_code == 422, bad
    located = await client.post(
        act(order["id"], "location"),
        json={"lat": -33.8688, "lon": 151.2093},
        headers=courier.headers,
    )
    assert located.status_code == 200, located.text

    own = await order_of(client, order["id"], customer)
    assert own["courier_position"]["lat"] == -33.8688
    code = own["handover_code"]
    for who in (world["owner"], world["admin"]):
        seen = await order_of(client, order["id"], who)
        assert seen["courier_id"] == courier.user.id
        assert (seen["handover_code"], seen["handover_qr"], seen["courier_position"]) == (None,) * 3
        their_events = await events_of(client, order["id"], who)
        assert [e["data"] for e in their_events if e["type"] == "courier.location"] == [None]
        assert code not in str(their_events)
    customers_events = await events_of(client, order["id"], customer)
    assert [e["data"] for e in customers_events if e["type"] == "courier.location"] == [
        {"lat": -33.8688, "lon": 151.2093}
    ]
    assert code not in str(customers_events)
    for path in (DELIVERIES, f"{DELIVERIES}/available"):
        assert code not in (await client.get(path, headers=courier.headers)).text
    hidden = await client.get(f"{ORDERS}/{order['id']}", headers=courier.headers)
    assert hidden.status_code == 404

    # Two positions were sent (the refused early one counts too): one more passes.
    lower = backend.runtime.settings.model_copy(update={"delivery_location_rate_limit": 3})
    monkeypatch.setattr(backend.runtime, "settings", lower)
    second = await client.post(
        act(order["id"], "location"), json={"lat": 0, "lon": 0}, headers=courier.headers
    )
    assert second.status_code == 200
    limited = await client.post(
        act(order["id"], "location"), json={"lat": 0, "lon": 0}, headers=courier.headers
    )
    assert (limited.status_code, limited.json()["code"]) == (429, "location_rate_limited")
    assert int(limited.headers["retry-after"]) > 0


async def test_only_couriers_act_and_only_on_their_own_deliveries(
    client: httpx.AsyncClient, backend: Backend, world: dict[str, Any]
) -> None:
    courier, other, customer, admin = (
        world["courier"],
        world["other"],
        world["customer"],
        world["admin"],
    )
    order = await ready_delivery(client, backend, world)
    pickup_order = await place_delivery(client, world["menu"], customer, fulfillment="pickup")
    for who in (customer, world["owner"]):
        listed = await client.get(f"{DELIVERIES}/available", headers=who.headers)
        assert listed.status_code == 403
        assert (await client.get(DELIVERIES, headers=who.headers)).status_code == 403
    for who in (customer, admin):
        tried = await client.post(act(order["id"], "accept"), headers=who.headers)
        assert (tried.status_code, tried.json()["code"]) == (403, "courier_only")
    assert await available_ids(client, admin) == [order["id"]]
    assert (await client.get(f"{DELIVERIES}/available")).status_code == 401
    not_delivery = await client.post(act(pickup_order["id"], "accept"), headers=courier.headers)
    assert (not_delivery.status_code, not_delivery.json()["code"]) == (404, "delivery_not_found")

    untaken = await client.post(act(order["id"], "pickup"), headers=courier.headers)
    assert (untaken.status_code, untaken.json()["code"]) == (403, "not_your_delivery")
    assert (
        await client.post(act(order["id"], "accept"), headers=courier.headers)
    ).status_code == 200
    code = (await order_of(client, order["id"], customer))["handover_code"]
    for action, body in (
        ("pickup", None),
        ("complete", {"handover_code": code}),
        ("location", {"lat": 1, "lon": 1}),
    ):
        answer = await client.post(act(order["id"], action), json=body, headers=other.headers)
        assert (answer.status_code, answer.json()["code"]) == (403, "not_your_delivery"), action
    taken = await client.post(act(order["id"], "accept"), headers=other.headers)
    assert (taken.status_code, taken.json()["code"]) == (409, "delivery_taken")
    too_early = await client.post(
        act(order["id"], "complete"), json={"handover_code": code}, headers=courier.headers
    )
    assert (too_early.status_code, too_early.json()["code"]) == (409, "not_out_for_delivery")
    everyone = (await client.get(DELIVERIES, headers=admin.headers)).json()
    assert [d["order_id"] for d in everyone["items"]] == [order["id"]]
    assert (await order_of(client, order["id"], customer))["status"] == "ready"


async def test_a_cancelled_offer_leaves_the_list_and_cannot_be_taken(
    client: httpx.AsyncClient, backend: Backend, world: dict[str, Any]
) -> None:
    courier = world["courier"]
    order = await ready_delivery(client, backend, world)
    cancelled = await client.post(
        f"{ORDERS}/{order['id']}/status",
        json={"status": "cancelled", "message": "Out of soup."},
        headers=world["owner"].headers,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert await available_ids(client, courier) == []
    late = await client.post(act(order["id"], "accept"), headers=courier.headers)
    assert (late.status_code, late.json()["code"]) == (409, "delivery_not_offered")
