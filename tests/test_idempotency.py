"""`Idempotency-Key` on order placement and checkout: a retried request replays the first
answer instead of placing a second order, also when the retries arrive all at once."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
from sqlalchemy import func, select, update

from commissary.core.db import utcnow
from commissary.models import IdempotencyKey, Order, Role
from tests.conftest import Account, Backend, MakeUser
from tests.menu import add_waiter, make_menu
from tests.test_cart import CHECKOUT, add
from tests.test_orders import body

ORDERS = "/api/v1/orders"
REPLAYED = "idempotent-replayed"


def keyed(account: Account, key: str | bytes) -> dict[str, str | bytes]:
    return {**account.headers, "Idempotency-Key": key}


async def count(backend: Backend, model: type[Order] | type[IdempotencyKey]) -> int:
    async with backend.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def keys(backend: Backend) -> list[IdempotencyKey]:
    async with backend.runtime.sessionmaker() as session:
        return list((await session.scalars(select(IdempotencyKey).order_by("id"))).all())


async def test_a_retry_replays_the_first_answer_and_places_one_order(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    order = body((menu.soup.id, 2), note="by the window")
    first = await client.post(ORDERS, json=order, headers=keyed(hero, "table-7/round-1"))
    assert first.status_code == 202, first.text
    assert REPLAYED not in first.headers
    assert first.headers["location"].endswith(f"{ORDERS}/{first.json()['id']}")

    # The same body written otherwise (key order) is the same request.
    same = {"note": "by the window", "items": order["items"]}
    for _ in range(2):
        again = await client.post(ORDERS, json=same, headers=keyed(hero, "table-7/round-1"))
        assert again.status_code == 202
        assert again.headers[REPLAYED] == "true"
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
    assert await count(backend, Order) == 1
    [stored] = await keys(backend)
    assert (stored.state, stored.response_status) == ("done", 202)


async def test_the_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    headers = keyed(hero, "k-1")
    assert (await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=headers)).is_success
    other = await client.post(ORDERS, json=body((menu.soup.id, 3)), headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert await count(backend, Order) == 1


async def test_keys_belong_to_their_member(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero, other = await make_user(), await make_user()
    order = body((menu.soup.id, 1))
    mine = await client.post(ORDERS, json=order, headers=keyed(hero, "shared-key"))
    theirs = await client.post(ORDERS, json=order, headers=keyed(other, "shared-key"))
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert REPLAYED not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["customer_id"] == other.user.id
    assert await count(backend, Order) == 2


async def test_a_malformed_key_is_a_400_naming_the_header(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    for bad in ("", "two words", "x" * 256, "clé".encode(), "tab\there"):
        response = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=keyed(hero, bad))
        assert response.status_code == 400, (bad, response.text)
        problem = response.json()
        assert problem["code"] == "invalid_idempotency_key"
        assert problem["errors"][0]["in"] == "header"
        assert problem["errors"][0]["field"] == "Idempotency-Key"
    longest = await client.post(
        ORDERS, json=body((menu.soup.id, 1)), headers=keyed(hero, "!~" * 127 + "z")
    )
    assert longest.status_code == 202, longest.text
    assert await count(backend, Order) == 1


async def test_twenty_identical_requests_at_once_place_one_order(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    waiter = await make_user(Role.WAITER)
    await add_waiter(backend, menu.restaurant.id, waiter.user.id)
    order = body((menu.soup.id, 1), customer_name="Table 12")
    headers = keyed(waiter, "tablet-3:0042")
    answers = await asyncio.gather(
        *(client.post(ORDERS, json=order, headers=headers) for _ in range(20))
    )
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {202, 409}, [a.text for a in answers]
    fresh = [a for a in answers if a.status_code == 202 and REPLAYED not in a.headers]
    assert len(fresh) == 1
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["code"] == "idempotency_key_in_progress"
        elif answer is not fresh[0]:
            assert answer.json() == fresh[0].json()
    assert await count(backend, Order) == 1
    retry = await client.post(ORDERS, json=order, headers=keyed(waiter, "tablet-3:0042"))
    assert (retry.status_code, retry.headers[REPLAYED]) == (202, "true")
    assert retry.json()["id"] == fresh[0].json()["id"]


async def test_identical_failing_requests_at_once_never_answer_500(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    """A failed placement releases its claim while others look it up: each of them either
    claims the key afresh or sees it in progress."""
    menu = await make_menu(backend)
    waiter = await make_user(Role.WAITER)  # not one of the restaurant's waiters: refused
    order = body((menu.soup.id, 1), customer_name="Table 7")
    headers = keyed(waiter, "tablet-9:0001")
    answers = await asyncio.gather(
        *(client.post(ORDERS, json=order, headers=headers) for _ in range(60))
    )
    assert {a.status_code for a in answers} <= {403, 409}, [a.text for a in answers]
    assert await count(backend, Order) == 0
    await add_waiter(backend, menu.restaurant.id, waiter.user.id)
    placed = await client.post(ORDERS, json=order, headers=headers)
    assert placed.status_code == 202, placed.text


async def test_a_failed_placement_does_not_use_up_the_key(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    headers = keyed(hero, "retry-me")
    for _ in range(2):  # the failure is not stored: the same request fails again the same way
        failed = await client.post(ORDERS, json=body((999_999, 1)), headers=headers)
        assert failed.status_code in (404, 422), failed.text
        assert REPLAYED not in failed.headers
    assert await keys(backend) == []
    placed = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=headers)
    assert placed.status_code == 202, placed.text
    assert REPLAYED not in placed.headers
    assert await count(backend, Order) == 1


async def test_a_claim_left_unfinished_answers_409_until_its_lease_ends(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    order = body((menu.soup.id, 1))
    first = await client.post(ORDERS, json=order, headers=keyed(hero, "crashed"))
    assert first.status_code == 202
    # As if the process had crashed after the claim: the key is in progress, no answer.
    async with backend.runtime.sessionmaker() as session:
        await session.execute(
            update(IdempotencyKey).values(
                state="in_progress", response_status=None, response_body=None
            )
        )
        await session.commit()
    busy = await client.post(ORDERS, json=order, headers=keyed(hero, "crashed"))
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_key_in_progress"
    lease = dt.timedelta(seconds=backend.settings.idempotency_lease + 1)
    async with backend.runtime.sessionmaker() as session:
        await session.execute(update(IdempotencyKey).values(created_at=utcnow() - lease))
        await session.commit()
    taken = await client.post(ORDERS, json=order, headers=keyed(hero, "crashed"))
    assert taken.status_code == 202, taken.text
    assert REPLAYED not in taken.headers
    [stored] = await keys(backend)
    assert stored.state == "done"


async def test_checkout_with_a_key_replays_instead_of_failing_on_the_emptied_cart(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    assert (await add(client, hero, menu.soup.id, 2)).status_code == 200
    headers = keyed(hero, "checkout-1")
    first = await client.post(CHECKOUT, json={"note": "no onions"}, headers=headers)
    assert first.status_code == 202, first.text
    again = await client.post(CHECKOUT, json={"note": "no onions"}, headers=headers)
    assert (again.status_code, again.headers[REPLAYED]) == (202, "true")
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert await count(backend, Order) == 1
    # Without a key, the emptied cart says so.
    plain = await client.post(CHECKOUT, json={"note": "no onions"}, headers=hero.headers)
    assert plain.status_code == 409
    assert plain.json()["code"] == "cart_empty"
    # Placement and checkout are different requests, even with the same key.
    other = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=headers)
    assert other.json()["code"] == "idempotency_key_reused"


async def test_without_the_header_nothing_is_stored(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    order = body((menu.soup.id, 1))
    answers = [await client.post(ORDERS, json=order, headers=hero.headers) for _ in range(2)]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json()["id"] != answers[1].json()["id"]
    assert all(REPLAYED not in a.headers and "location" in a.headers for a in answers)
    assert await count(backend, Order) == 2
    assert await keys(backend) == []
    # A keyed answer has the same shape and content type as an unkeyed one.
    with_key = await client.post(ORDERS, json=order, headers=keyed(hero, "k"))
    plain, keyed_answer = answers[0].json(), with_key.json()
    assert with_key.headers["content-type"] == answers[0].headers["content-type"]
    assert set(keyed_answer) == set(plain)
    for same in ("status", "total", "currency", "customer_id", "allowed_transitions"):
        assert keyed_answer[same] == plain[same]


async def test_the_purge_deletes_expired_keys_only(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    order = body((menu.soup.id, 1))
    for key in ("old", "fresh"):
        assert (await client.post(ORDERS, json=order, headers=keyed(hero, key))).is_success
    async with backend.runtime.sessionmaker() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
        await session.commit()
    await backend.run_job("idempotency.purge")
    assert [k.key for k in await keys(backend)] == ["fresh"]
    # The purged key is free again: a new order, not a replay.
    again = await client.post(ORDERS, json=order, headers=keyed(hero, "old"))
    assert again.status_code == 202
    assert REPLAYED not in again.headers
    assert await count(backend, Order) == 3


async def test_the_header_and_its_answers_are_documented(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path in (ORDERS, CHECKOUT):
        operation = document["paths"][path]["post"]
        names = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert "Idempotency-Key" in names
        for status, code in (("400", "invalid_idempotency_key"), ("409", "in_progress")):
            assert code in operation["responses"][status]["description"]
        assert "idempotency_key_reused" in operation["responses"]["422"]["description"]
