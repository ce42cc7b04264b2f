"""The cafeteria end to end: placing orders, the allergen-checking worker and the kitchen."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select, update

from commissary.models import KitchenMode, Order, OrderEvent, Product, Role
from tests.conftest import Backend, MakeUser
from tests.menu import add_waiter, make_menu

ORDERS = "/api/v1/orders"


def body(*items: tuple[int, int], **extra: object) -> dict[str, object]:
    return {"items": [{"product_id": p, "quantity": q} for p, q in items], **extra}


async def count_orders(backend: Backend) -> int:
    async with backend.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def history(client: httpx.AsyncClient, order_id: int, headers: dict[str, str]) -> list[str]:
    response = await client.get(
        f"{ORDERS}/{order_id}/events", params={"limit": 100}, headers=headers
    )
    assert response.status_code == 200
    events = response.json()["items"]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    return [e["type"] for e in events]


async def test_safe_meal_is_accepted_then_completed_by_the_kitchen(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user(allergies=["peanuts"], planet="Xandar")
    response = await client.post(ORDERS, json=body((menu.soup.id, 2)), headers=hero.headers)
    assert response.status_code == 202, response.text
    order = response.json()
    assert response.headers["location"].endswith(f"{ORDERS}/{order['id']}")
    assert order["status"] == "pending"
    assert order["allowed_transitions"] == ["cancelled"]
    assert order["total"] == "15.00"
    assert order["items"] == [
        {
            "product_id": menu.soup.id,
            "product_name": "Solar Soup",
            "unit_price": "7.50",
            "quantity": 2,
            "line_total": "15.00",
            "options": [],
        }
    ]
    assert order["customer_name"] == hero.user.full_name
    await backend.settle()
    done = (await client.get(f"{ORDERS}/{order['id']}", headers=hero.headers)).json()
    assert done["status"] == "completed"
    assert done["completed_time"] is not None
    assert done["allowed_transitions"] == []
    assert await history(client, order["id"], hero.headers) == [
        "created",
        "status.in_progress",
        "status.completed",
    ]


@pytest.mark.parametrize(
    ("allergy", "kind", "term"),
    [
        ("  PEANUTS", "ingredient", "Peanuts "),
        ("nuts", "allergen", "nuts"),
    ],
)
async def test_order_with_allergen_is_cancelled_with_reason(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    allergy: str,
    kind: str,
    term: str,
) -> None:
    menu = await make_menu(backend)
    hero = await make_user(allergies=[allergy])
    placed = await client.post(
        ORDERS, json=body((menu.soup.id, 1), (menu.noodles.id, 1)), headers=hero.headers
    )
    assert placed.status_code == 202
    await backend.settle()
    order = (await client.get(f"{ORDERS}/{placed.json()['id']}", headers=hero.headers)).json()
    assert order["status"] == "cancelled"
    assert f'line 2 "Nebula Noodles": {kind} "{term}"' in order["message"]
    assert f'allergy "{allergy.strip()}"' in order["message"]
    assert "Solar Soup" not in order["message"]
    assert await history(client, order["id"], hero.headers) == [
        "created",
        "status.in_progress",
        "status.cancelled",
    ]


async def test_prices_come_from_the_menu_and_sum_exactly(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    forged = await client.post(
        ORDERS,
        json={"items": [{"product_id": menu.cheap.id, "quantity": 1, "unit_price": "0"}]},
        headers=hero.headers,
    )
    assert forged.status_code == 422
    placed = await client.post(
        ORDERS, json=body((menu.cheap.id, 3), (menu.cake.id, 1)), headers=hero.headers
    )
    assert placed.json()["total"] == "4.30"
    # Later menu changes do not touch the order's lines.
    async with backend.runtime.sessionmaker() as session:
        await session.execute(
            update(Product)
            .where(Product.id == menu.cheap.id)
            .values(price=Decimal("9.99"), name="Renamed")
        )
        await session.commit()
    again = (await client.get(f"{ORDERS}/{placed.json()['id']}", headers=hero.headers)).json()
    assert again["items"][0]["product_name"] == "Stardust Sprinkle"
    assert again["items"][0]["unit_price"] == "0.10"
    assert again["total"] == "4.30"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"items": []}, 422, "validation_failed"),
        ({"items": [{"product_id": 1, "quantity": 0}]}, 422, "validation_failed"),
        ({"items": [{"product_id": 1, "quantity": 101}]}, 422, "validation_failed"),
        ({"items": [{"product_id": 1, "quantity": 1}] * 51}, 422, "validation_failed"),
        ({"items": [{"product_id": 999999, "quantity": 1}]}, 422, "unknown_product"),
        (
            {"items": [{"product_id": 1, "quantity": 1}], "fulfillment": "delivery"},
            422,
            "validation_failed",
        ),
        (
            {"items": [{"product_id": 1, "quantity": 1}], "customer_name": "Groot"},
            403,
            "staff_only_field",
        ),
    ],
)
async def test_bad_orders_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    payload: dict[str, object],
    status: int,
    code: str,
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    items = payload["items"]
    assert isinstance(items, list)
    payload = {
        **payload,
        "items": [
            {**i, "product_id": menu.soup.id if i["product_id"] == 1 else i["product_id"]}
            for i in items
        ],
    }
    response = await client.post(ORDERS, json=payload, headers=hero.headers)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert await count_orders(backend) == 0


async def test_unavailable_mixed_inactive_and_closed_are_refused(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    other = await make_menu(backend, slug="moon-diner")
    closed = await make_menu(
        backend, slug="night-owl", opening_hours={"mon": [{"open": "03:00", "close": "03:01"}]}
    )
    hero = await make_user()
    async with backend.runtime.sessionmaker() as session:
        await session.execute(
            update(Product).where(Product.id == menu.cake.id).values(is_available=False)
        )
        await session.commit()
    cases = [
        (body((menu.cake.id, 1)), 409, "product_unavailable"),
        (body((menu.soup.id, 1), (other.soup.id, 1)), 422, "mixed_restaurants"),
        (body((menu.soup.id, 1), restaurant_id=other.restaurant.id), 422, "restaurant_mismatch"),
        (body((closed.soup.id, 1)), 409, "restaurant_closed"),
    ]
    for payload, status, code in cases:
        response = await client.post(ORDERS, json=payload, headers=hero.headers)
        assert (response.status_code, response.json()["code"]) == (status, code), payload
    async with backend.runtime.sessionmaker() as session:
        await session.execute(update(type(menu.restaurant)).values(is_active=False))
        await session.commit()
    inactive = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
    assert inactive.json()["code"] == "restaurant_inactive"
    assert await count_orders(backend) == 0


async def test_unverified_customer_cannot_order(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user(verified=False)
    response = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
    assert response.status_code == 403
    assert response.json()["code"] == "email_not_verified"


async def test_customers_see_only_their_own_orders(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    alice, bob = await make_user(), await make_user()
    mine = (await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=alice.headers)).json()
    await client.post(ORDERS, json=body((menu.cake.id, 1)), headers=bob.headers)
    for path in (f"{ORDERS}/{mine['id']}", f"{ORDERS}/{mine['id']}/events"):
        assert (await client.get(path, headers=bob.headers)).status_code == 404
    for action in (
        client.post(f"{ORDERS}/{mine['id']}/cancel", headers=bob.headers),
        client.delete(f"{ORDERS}/{mine['id']}", headers=bob.headers),
    ):
        assert (await action).status_code == 404
    listed = (await client.get(ORDERS, headers=bob.headers)).json()
    assert listed["total"] == 1
    assert all(o["customer_id"] == bob.user.id for o in listed["items"])
    admin = await make_user(Role.ADMIN)
    assert (await client.get(ORDERS, headers=admin.headers)).json()["total"] == 2
    assert (await client.get(ORDERS)).status_code == 401


async def test_restaurateur_sees_only_orders_of_own_restaurants(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    own = await make_menu(backend, owner_id=owner.user.id)
    other = await make_menu(backend, slug="moon-diner")
    hero = await make_user()
    placed = (await client.post(ORDERS, json=body((own.soup.id, 1)), headers=hero.headers)).json()
    foreign = (
        await client.post(ORDERS, json=body((other.soup.id, 1)), headers=hero.headers)
    ).json()
    listed = (await client.get(ORDERS, headers=owner.headers)).json()
    assert [o["id"] for o in listed["items"]] == [placed["id"]]
    assert (await client.get(f"{ORDERS}/{foreign['id']}", headers=owner.headers)).status_code == 404


async def test_customer_cancels_with_a_reason_and_the_worker_leaves_it(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    order = (await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)).json()
    cancelled = await client.post(
        f"{ORDERS}/{order['id']}/cancel", json={"reason": "changed my mind"}, headers=hero.headers
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["message"] == "changed my mind"
    await backend.settle()  # the queued processing finds a cancelled order and does nothing
    again = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=hero.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "order_closed"
    # In process the job may already have started the order; either way nothing follows.
    assert await history(client, order["id"], hero.headers) in (
        ["created", "status.cancelled"],
        ["created", "status.in_progress", "status.cancelled"],
    )


async def test_delete_cancels_an_active_order_and_deletes_a_finished_one(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    active = (await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)).json()
    first = await client.delete(f"{ORDERS}/{active['id']}", headers=hero.headers)
    assert first.status_code == 200
    assert first.json()["status"] == "cancelled"
    second = await client.delete(f"{ORDERS}/{active['id']}", headers=hero.headers)
    assert second.status_code == 204
    assert (await client.get(f"{ORDERS}/{active['id']}", headers=hero.headers)).status_code == 404
    done = (await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)).json()
    await backend.settle()
    assert (await client.delete(f"{ORDERS}/{done['id']}", headers=hero.headers)).status_code == 204
    async with backend.runtime.sessionmaker() as session:
        left = await session.scalar(select(func.count()).select_from(OrderEvent))
    assert left == 0


async def test_manual_kitchen_is_advanced_by_the_restaurant(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    owner = await make_user(Role.RESTAURATEUR)
    menu = await make_menu(backend, kitchen_mode=KitchenMode.MANUAL, owner_id=owner.user.id)
    hero = await make_user()
    pickup = (await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)).json()
    delivery = (
        await client.post(
            ORDERS,
            json=body(
                (menu.soup.id, 1), fulfillment="delivery", delivery_address="Deck 7, Knowhere"
            ),
            headers=hero.headers,
        )
    ).json()
    await backend.settle()
    status = f"{ORDERS}/{pickup['id']}/status"
    seen = (await client.get(f"{ORDERS}/{pickup['id']}", headers=owner.headers)).json()
    assert seen["status"] == "awaiting_acceptance"
    for placed in (pickup, delivery):
        accepted = await client.post(f"{ORDERS}/{placed['id']}/accept", headers=owner.headers)
        assert accepted.status_code == 200, accepted.text
    seen = (await client.get(f"{ORDERS}/{pickup['id']}", headers=owner.headers)).json()
    assert seen["status"] == "in_progress"
    assert seen["allowed_transitions"] == ["ready", "cancelled"]
    by_hero = await client.post(status, json={"status": "ready"}, headers=hero.headers)
    assert by_hero.status_code == 403
    skip = await client.post(status, json={"status": "out_for_delivery"}, headers=owner.headers)
    assert (skip.status_code, skip.json()["code"]) == (409, "transition_not_allowed")
    for target in ("ready", "completed"):
        moved = await client.post(status, json={"status": target}, headers=owner.headers)
        assert moved.status_code == 200, moved.text
    assert moved.json()["completed_time"] is not None
    ready = await client.post(
        f"{ORDERS}/{delivery['id']}/status", json={"status": "ready"}, headers=owner.headers
    )
    assert ready.json()["allowed_transitions"] == ["out_for_delivery", "cancelled"]
    early = await client.post(
        f"{ORDERS}/{delivery['id']}/status", json={"status": "completed"}, headers=owner.headers
    )
    assert early.json()["code"] == "delivery_must_go_out_first"
    not_deletable = await client.delete(f"{ORDERS}/{delivery['id']}", headers=hero.headers)
    assert not_deletable.json()["code"] == "order_not_deletable"
    assert await history(client, pickup["id"], hero.headers) == [
        "created",
        "status.awaiting_acceptance",
        "accepted",
        "status.ready",
        "status.completed",
    ]


async def test_processing_twice_changes_nothing(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend, kitchen_mode=KitchenMode.MANUAL)
    hero = await make_user()
    order = (await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)).json()
    await backend.settle()
    await backend.run_job("orders.process", order_id=order["id"])
    await backend.run_job("orders.process_pending")
    await backend.run_job("orders.sweep")
    assert await history(client, order["id"], hero.headers) == [
        "created",
        "status.awaiting_acceptance",
    ]


async def test_staff_order_for_a_hero_checks_the_heros_allergies(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    waiter = await make_user(Role.WAITER)
    hero = await make_user(allergies=["gluten"])
    await add_waiter(backend, menu.restaurant.id, waiter.user.id)
    placed = await client.post(
        ORDERS, json=body((menu.cake.id, 1), customer_id=hero.user.id), headers=waiter.headers
    )
    assert placed.status_code == 202
    walk_in = await client.post(
        ORDERS,
        json=body((menu.noodles.id, 1), customer_name="Drax", allergies=["chili"]),
        headers=waiter.headers,
    )
    assert walk_in.json()["customer_id"] is None
    assert walk_in.json()["waiter_id"] == waiter.user.id
    await backend.settle()
    for response in (placed, walk_in):
        order = (
            await client.get(f"{ORDERS}/{response.json()['id']}", headers=waiter.headers)
        ).json()
        assert order["status"] == "cancelled"
    assert (
        await client.get(f"{ORDERS}/{placed.json()['id']}", headers=hero.headers)
    ).status_code == 200


async def test_out_of_range_ids_and_nul_characters_are_4xx_not_500(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    huge = 2**70
    checks = [
        await client.get(f"{ORDERS}/{huge}", headers=hero.headers),
        await client.get(ORDERS, params={"restaurant_id": str(huge)}, headers=hero.headers),
        await client.get(ORDERS, params={"search": "a\x00b"}, headers=hero.headers),
        await client.post(ORDERS, json=body((huge, 1)), headers=hero.headers),
        await client.post(
            ORDERS, json=body((menu.soup.id, 1), note="x\x00y"), headers=hero.headers
        ),
        await client.patch("/api/v1/users/me", json={"full_name": "A\x00B"}, headers=hero.headers),
    ]
    assert [r.status_code for r in checks] == [422, 400, 400, 422, 422, 422]
    assert await count_orders(backend) == 0


async def test_order_events_list_filters_sorts_and_pages(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    placed = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
    await backend.settle()
    url = f"{ORDERS}/{placed.json()['id']}/events"
    page = (await client.get(url, headers=hero.headers)).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 20, 0)
    newest = await client.get(
        url, params={"type__icontains": "status", "sort": "-sequence"}, headers=hero.headers
    )
    assert [e["type"] for e in newest.json()["items"]] == ["status.completed", "status.in_progress"]
    second = await client.get(url, params={"limit": 1, "offset": 1}, headers=hero.headers)
    assert [e["sequence"] for e in second.json()["items"]] == [2]
    refused = await client.get(url, params={"actor_id": 1}, headers=hero.headers)
    assert (refused.status_code, refused.json()["parameter"]) == (400, "actor_id")
    stranger = await make_user()
    assert (await client.get(url, headers=stranger.headers)).status_code == 404


async def test_a_backlog_of_cooked_orders_is_completed_batch_after_batch_not_one_per_sweep(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More cooked orders than a batch: one sweep starts the completions and the batches
    that follow drain the rest, so completions keep up with placement."""
    # Settings are frozen; the test narrows the batch for itself. The kitchen takes an hour,
    # so the embedded mode's own periodic sweep finishes no order before the test says it
    # is cooked (a busy machine stretched the default fraction of a second past it).
    for name, value in (
        ("order_batch_size", 2),
        ("kitchen_min_seconds", 3600),
        ("kitchen_max_seconds", 3600),
    ):
        monkeypatch.setitem(backend.runtime.settings.__dict__, name, value)
    menu = await make_menu(backend)
    hero = await make_user()
    for _ in range(5):
        response = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
        assert response.status_code == 202
    await backend.run_jobs()  # the allergen checks: batches of 2, each waking the next
    async with backend.runtime.sessionmaker() as session:
        cooking = await session.scalar(select(func.count()).where(Order.status == "in_progress"))
        # The kitchen is done with every one of them.
        await session.execute(update(Order).values(kitchen_due_at=func.now()))
        await session.commit()
    assert cooking == 5
    await backend.run_job("orders.sweep")  # one sweep...
    await backend.run_jobs()  # ...and the batches it woke
    async with backend.runtime.sessionmaker() as session:
        statuses = (await session.scalars(select(Order.status))).all()
    assert sorted(s.value for s in statuses) == ["completed"] * 5
