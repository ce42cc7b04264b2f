"""The order event stream: positions given in commit order, without gaps, by the sequencer;
`WS /api/v1/events/ws` and `GET /api/v1/events/stream` (SSE) on a real uvicorn server, in
both modes (SQLite + in-process jobs and fan-out; PostgreSQL + Redis + RQ, where the worker's
batches reach the api's sockets through Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect

from commissary.core.db import after_commit
from commissary.events import sequencer
from commissary.events.sequencer import StreamEvent
from commissary.models import EventStreamHead, Order, OrderEvent, Role
from tests.conftest import Account, Backend, MakeUser
from tests.menu import Menu, make_menu
from tests.test_orders import ORDERS, body
from tests.test_support_ws import WAIT, close_code, recv, ticket_for, uvicorn_server

WS = "/api/v1/events/ws"
STREAM = "/api/v1/events/stream"


@pytest.fixture
async def live(backend: Backend) -> AsyncIterator[str]:
    async with uvicorn_server(backend.app) as url:
        yield url


def http_of(live: str) -> str:
    return live.replace("ws://", "http://")


async def place(client: httpx.AsyncClient, menu: Menu, who: Account) -> int:
    response = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=who.headers)
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


async def visible_positions(backend: Backend, customer_id: int, after: int = 0) -> list[int]:
    """What the database says this customer may see after ``after``, in order."""
    async with backend.runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(OrderEvent.position)
            .join(Order, Order.id == OrderEvent.order_id)
            .where(Order.customer_id == customer_id, OrderEvent.position > after)
            .order_by(OrderEvent.position)
        )
        return [int(p) for p in rows]


@contextlib.asynccontextmanager
async def events_socket(
    live: str, who: Account, query: str = ""
) -> AsyncIterator[ClientConnection]:
    headers = {"Authorization": who.headers["Authorization"]}
    async with connect(
        f"{live}{WS}{'?' + query if query else ''}", additional_headers=headers
    ) as ws:
        yield ws


async def until_ready(ws: ClientConnection) -> tuple[list[dict[str, Any]], int]:
    """The backlog frames, then the ``ready`` frame's position."""
    backlog: list[dict[str, Any]] = []
    while True:
        frame = await recv(ws)
        if frame["type"] == "ready":
            return backlog, int(frame["last_event_id"])
        assert frame["type"] == "event", frame
        backlog.append(frame["event"])


async def take(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    events = []
    while len(events) < count:
        frame = await recv(ws)
        assert frame["type"] == "event", frame
        events.append(frame["event"])
    return events


# --- the sequencer -----------------------------------------------------------------------------


async def test_positions_are_gap_free_and_follow_each_order_s_history(
    backend: Backend, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    heroes = [await make_user() for _ in range(4)]
    await asyncio.gather(*(place(client, menu, hero) for hero in heroes for _ in range(5)))
    await backend.settle()
    await backend.run_job(sequencer.SEQUENCE_JOB)
    async with backend.runtime.sessionmaker() as session:
        rows = (
            await session.execute(
                select(OrderEvent.order_id, OrderEvent.sequence, OrderEvent.position).order_by(
                    OrderEvent.position
                )
            )
        ).all()
        head = await session.scalar(select(EventStreamHead.position))
    positions = [row.position for row in rows]
    assert len(rows) == 20 * 3  # created, in_progress, completed of each order
    assert positions == list(range(1, len(rows) + 1))
    assert head == len(rows)
    seen: dict[int, int] = {}
    for row in rows:  # within an order, the stream keeps the history's order
        assert row.sequence == seen.get(row.order_id, 0) + 1
        seen[row.order_id] = row.sequence


@pytest.fixture
def recorded() -> Iterator[list[StreamEvent]]:
    """A consumer registered on the stream for one test: what it keeps is what committed
    (as a consumer's rows would be)."""
    got: list[StreamEvent] = []

    async def hook(session: AsyncSession, events: Sequence[StreamEvent]) -> None:
        async def keep() -> None:
            got.extend(events)

        after_commit(session, keep)

    sequencer.on_sequenced(hook)
    yield got
    sequencer._HOOKS.remove(hook)


async def test_a_consumer_gets_each_event_once_and_a_failing_one_gives_no_position(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    recorded: list[StreamEvent],
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    failing = True

    async def broken(session: AsyncSession, events: Sequence[StreamEvent]) -> None:
        if failing:
            raise RuntimeError("consumer down")

    sequencer.on_sequenced(broken)
    try:
        order_id = await place(client, menu, hero)
        with pytest.raises(RuntimeError):
            await backend.run_job(sequencer.SEQUENCE_JOB)
        async with backend.runtime.sessionmaker() as session:
            given = await session.scalar(
                select(func.count()).where(OrderEvent.position.is_not(None))
            )
        assert given == 0  # rolled back with the consumer: no position, nothing given
        failing = False
        await backend.settle()
        await backend.run_job(sequencer.SEQUENCE_JOB)
        await backend.run_job(sequencer.SEQUENCE_JOB)  # nothing left: gives nothing twice
    finally:
        sequencer._HOOKS.remove(broken)
    mine = [event for event in recorded if event.order_id == order_id]
    assert [e.type for e in mine] == ["created", "status.in_progress", "status.completed"]
    assert len({e.id for e in recorded}) == len(recorded)
    assert mine[0].customer_id == hero.user.id and mine[0].restaurant_id == menu.restaurant.id


# --- the WebSocket -----------------------------------------------------------------------------


async def test_a_reader_that_reconnects_misses_nothing_and_gets_nothing_twice(
    backend: Backend, client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    menu = await make_menu(backend)
    hero, other = await make_user(), await make_user()
    await place(client, menu, hero)
    await backend.settle()

    async with events_socket(live, hero) as ws:
        backlog, start = await until_ready(ws)
        assert backlog == []  # without last_event_id: live only
        second = await place(client, menu, hero)
        await place(client, menu, other)  # never shown to hero
        await backend.settle()
        first_live = await take(ws, 3)
    assert [(e["order_id"], e["type"]) for e in first_live] == [
        (second, "created"),
        (second, "status.in_progress"),
        (second, "status.completed"),
    ]
    assert first_live[0]["id"] > start
    last = first_live[-1]["id"]

    # Disconnected: more orders happen, of hero's and of another customer's.
    missed_orders = [await place(client, menu, hero), await place(client, menu, hero)]
    await place(client, menu, other)
    await backend.settle()

    async with events_socket(live, hero, f"last_event_id={last}") as ws:
        backlog, resumed_at = await until_ready(ws)
        expected = await visible_positions(backend, hero.user.id, after=last)
        assert [e["id"] for e in backlog] == expected
        assert {e["order_id"] for e in backlog} == set(missed_orders)
        assert len(backlog) == 6
        # ...then live events, continuing after the backlog.
        fourth = await place(client, menu, hero)
        await backend.settle()
        later = await take(ws, 3)
    assert [e["order_id"] for e in later] == [fourth] * 3
    ids = [e["id"] for e in backlog + later]
    assert ids == sorted(set(ids)) and ids[0] > last and resumed_at >= ids[len(backlog) - 1]
    assert "customer_id" not in later[0] and "actor_id" not in later[0]


async def test_each_member_sees_the_orders_it_may_see(
    backend: Backend, client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    owner, stranger = await make_user(Role.RESTAURATEUR), await make_user(Role.RESTAURATEUR)
    admin, hero = await make_user(Role.ADMIN), await make_user()
    mine = await make_menu(backend, owner_id=owner.user.id)
    theirs = await make_menu(backend, slug="other-place", owner_id=stranger.user.id)
    async with (
        events_socket(live, owner) as owner_ws,
        events_socket(live, admin) as admin_ws,
    ):
        await until_ready(owner_ws)
        await until_ready(admin_ws)
        elsewhere = await place(client, theirs, hero)
        here = await place(client, mine, hero)
        await backend.settle()
        seen_by_admin = await take(admin_ws, 6)
        seen_by_owner = await take(owner_ws, 3)
    assert {e["order_id"] for e in seen_by_admin} == {elsewhere, here}
    assert {e["order_id"] for e in seen_by_owner} == {here}
    assert all(e["restaurant_id"] == mine.restaurant.id for e in seen_by_owner)


async def test_a_ticket_opens_the_socket_once_and_bad_parameters_close_it(
    backend: Backend, client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    hero = await make_user()
    ticket = await ticket_for(client, hero)
    async with connect(f"{live}{WS}?ticket={ticket}") as ws:
        assert (await until_ready(ws))[0] == []
    async with connect(f"{live}{WS}?ticket={ticket}") as ws:
        assert await close_code(ws) == 4401  # used already
    async with connect(f"{live}{WS}") as ws:
        assert await close_code(ws) == 4401
    async with events_socket(live, hero, "last_event_id=-3") as ws:
        assert await close_code(ws) == 4400


# --- Server-Sent Events ------------------------------------------------------------------------


async def sse_events(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    """Read ``count`` events of an SSE response, checking each `id:` line against its data."""
    events: list[dict[str, Any]] = []
    frame: dict[str, str] = {}
    lines = response.aiter_lines()
    async with asyncio.timeout(WAIT):
        while len(events) < count:
            line = await anext(lines)
            if line == "":
                if "data" in frame:
                    event = json.loads(frame["data"])
                    assert frame["event"] == "order_event"
                    assert int(frame["id"]) == event["id"]
                    events.append(event)
                frame = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(": ")
                frame[field] = value
    return events


async def test_server_sent_events_resume_with_last_event_id(
    backend: Backend, client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    url = http_of(live) + STREAM
    async with httpx.AsyncClient(timeout=WAIT) as http:
        async with http.stream("GET", url, headers=hero.headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            first = await place(client, menu, hero)
            await backend.settle()
            seen = await sse_events(response, 3)
        assert [e["order_id"] for e in seen] == [first] * 3
        missed = await place(client, menu, hero)
        await backend.settle()
        ticket = await ticket_for(client, hero)
        headers = {"Last-Event-ID": str(seen[-1]["id"])}
        async with http.stream("GET", url, params={"ticket": ticket}, headers=headers) as response:
            again = await sse_events(response, 3)
        assert [e["order_id"] for e in again] == [missed] * 3
        assert again[0]["id"] > seen[-1]["id"]
        assert [e["id"] for e in again] == await visible_positions(
            backend, hero.user.id, after=seen[-1]["id"]
        )

        refused = await http.get(url)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        bad = await http.get(url, headers={**hero.headers, "Last-Event-ID": "soon"})
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_last_event_id"
