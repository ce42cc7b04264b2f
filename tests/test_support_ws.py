"""`WS /api/v1/support/ws` on a real uvicorn server on a loopback port, driven by the
`websockets` client, in both modes (SQLite + in-process fan-out, PostgreSQL + Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import update
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from commissary.core.db import commit
from commissary.core.http_protocol import GatheringHttpProtocol
from commissary.core.realtime import Hub
from commissary.models import Role, User
from commissary.support import service
from tests.conftest import Account, Backend, MakeUser
from tests.servers import free_port
from tests.test_support import BASE, messages, open_conversation, send

WS = "/api/v1/support/ws"
WAIT = 15  # seconds a frame may take before the test gives up (a hang guard, not a timing)


@contextlib.asynccontextmanager
async def uvicorn_server(app: FastAPI, *, lifespan: str = "off") -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free loopback port; yields ``ws://127.0.0.1:port``."""
    port = free_port()
    # Without the lifespan nothing ends the open event streams at stop: bound the wait.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan=lifespan,
        log_level="warning",
        timeout_graceful_shutdown=2,
        http=GatheringHttpProtocol,  # as `commissary serve` runs it
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(WAIT):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live(backend: Backend) -> AsyncIterator[str]:
    """The backend's app (and runtime, and hub) served on a loopback port."""
    async with uvicorn_server(backend.app) as url:
        yield url


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": account.headers["Authorization"]}


@contextlib.asynccontextmanager
async def socket_of(
    live: str, account: Account | None = None, query: str = "", **options: Any
) -> AsyncIterator[ClientConnection]:
    headers = bearer(account) if account else {}
    async with connect(
        f"{live}{WS}{'?' + query if query else ''}", additional_headers=headers, **options
    ) as ws:
        yield ws


async def recv(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return frame


async def recv_type(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next frame of type ``kind``, skipping others (typing, conversation updates)."""
    while True:
        frame = await recv(ws)
        if frame["type"] == kind:
            return frame


async def drain(ws: ClientConnection) -> None:
    while True:
        await asyncio.wait_for(ws.recv(), WAIT)


async def close_code(ws: ClientConnection) -> int:
    """Read until the server closes; the close code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        await drain(ws)
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code


async def join(ws: ClientConnection, conversation_id: int, after_id: int | None = None) -> None:
    frame: dict[str, Any] = {"type": "join", "conversation_id": conversation_id}
    if after_id is not None:
        frame["after_id"] = after_id
    await ws.send(json.dumps(frame))


async def say(ws: ClientConnection, conversation_id: int, body: str) -> None:
    await ws.send(json.dumps({"type": "message", "conversation_id": conversation_id, "body": body}))


async def ticket_for(client: httpx.AsyncClient, account: Account, ttl: int = 60) -> str:
    response = await client.post("/api/v1/ws-tickets", headers=account.headers)
    assert response.status_code == 201, response.text
    assert response.json()["expires_in"] == ttl
    return str(response.json()["ticket"])


# --- chatting --------------------------------------------------------------------------------


async def test_customer_and_support_chat_live_and_messages_are_saved(
    client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    customer, agent = await make_user(), await make_user(Role.SUPPORT)
    cid = (await open_conversation(client, customer))["id"]
    async with (
        socket_of(live, customer, f"conversation_id={cid}") as mine,
        socket_of(live, agent) as theirs,
    ):
        assert (await recv(mine))["type"] == "joined"
        await join(theirs, cid)
        joined = await recv_type(theirs, "joined")
        assert joined["conversation"]["subject"] == "Cold soup"

        await say(mine, cid, "Is anyone there?")
        got = await recv_type(theirs, "message")
        echo = await recv_type(mine, "message")
        assert got == echo
        assert (got["body"], got["author_id"], got["seq"]) == (
            "Is anyone there?",
            customer.user.id,
            2,
        )

        await theirs.send(json.dumps({"type": "typing", "conversation_id": cid}))
        typing = await recv_type(mine, "typing")
        assert typing["member_id"] == agent.user.id
        await say(theirs, cid, "Yes, <b>hello</b>!")
        reply = await recv_type(mine, "message")
        assert reply["body"] == "Yes, hello!"
        await mine.send(
            json.dumps({"type": "read", "conversation_id": cid, "message_id": reply["id"]})
        )
        read = await recv_type(theirs, "read")
        assert (read["message_id"], read["member_id"]) == (reply["id"], customer.user.id)

    history = (await messages(client, customer, cid)).json()["items"]
    assert [m["id"] for m in history][1:] == [got["id"], reply["id"]]
    # The agent's first reply took the conversation.
    taken = await client.get(f"{BASE}/{cid}", headers=customer.headers)
    assert taken.json()["assignee_id"] == agent.user.id


async def test_support_sockets_hear_of_new_conversations(
    client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    customer, agent = await make_user(), await make_user(Role.SUPPORT)
    async with socket_of(live, agent) as ws:
        # The server reads frames only once the socket has joined its channels: an answered
        # frame says the queue's channel is joined, so no new conversation can slip by.
        await ws.send(json.dumps({"type": "hello"}))
        assert (await recv_type(ws, "error"))["code"] == "invalid_frame"
        cid = (await open_conversation(client, customer, "New one"))["id"]
        frame = await recv_type(ws, "conversation")
        assert (frame["conversation"]["id"], frame["conversation"]["subject"]) == (cid, "New one")


async def test_a_rest_message_reaches_the_sockets(
    client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    customer, agent = await make_user(), await make_user(Role.SUPPORT)
    cid = (await open_conversation(client, customer))["id"]
    async with socket_of(live, customer, f"conversation_id={cid}") as ws:
        await recv_type(ws, "joined")
        sent = await send(client, agent, cid, "Answered over REST")
        assert (await recv_type(ws, "message"))["id"] == sent.json()["id"]
        await client.post(f"{BASE}/{cid}/close", headers=agent.headers)
        closed = await recv_type(ws, "conversation")
        assert closed["conversation"]["status"] == "closed"
        await say(ws, cid, "wait!")
        error = await recv_type(ws, "error")
        assert error["code"] == "conversation_closed"


# --- authentication ----------------------------------------------------------------------------


async def test_ticket_opens_one_socket_once(
    client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    customer = await make_user()
    cid = (await open_conversation(client, customer))["id"]
    ticket = await ticket_for(client, customer)
    async with socket_of(live, query=f"ticket={ticket}&conversation_id={cid}") as ws:
        assert (await recv(ws))["type"] == "joined"
    async with socket_of(live, query=f"ticket={ticket}") as reused:
        assert await close_code(reused) == 4401


async def test_bad_missing_or_expired_ticket_is_closed_with_4401(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    live: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customer = await make_user()
    for query in ("ticket=not-a-ticket", ""):
        async with socket_of(live, query=query) as ws:
            assert await close_code(ws) == 4401
    async with connect(f"{live}{WS}", additional_headers={"Authorization": "Bearer nope"}) as ws:
        assert await close_code(ws) == 4401
    monkeypatch.setattr(backend.runtime.tickets, "ttl", 1)
    ticket = await ticket_for(client, customer, ttl=1)
    await asyncio.sleep(1.5)  # past the ticket's life
    async with socket_of(live, query=f"ticket={ticket}") as ws:
        assert await close_code(ws) == 4401


async def test_ticket_dies_with_the_sign_in_it_was_issued_for(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, live: str
) -> None:
    customer = await make_user()
    ticket = await ticket_for(client, customer)
    async with backend.runtime.sessionmaker() as session:  # a password change, in effect
        await session.execute(
            update(User).where(User.id == customer.user.id).values(token_key="f" * 32)
        )
        await commit(session)
    async with socket_of(live, query=f"ticket={ticket}") as ws:
        assert await close_code(ws) == 4401


async def test_foreign_origin_is_refused_and_own_origin_accepted(
    client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    customer = await make_user()
    cid = (await open_conversation(client, customer))["id"]
    async with socket_of(live, customer, origin="https://evil.example") as ws:  # type: ignore[arg-type]
        assert await close_code(ws) == 4403
    own = live.replace("ws://", "http://")
    async with socket_of(live, customer, f"conversation_id={cid}", origin=own) as ws:  # type: ignore[arg-type]
        assert (await recv(ws))["type"] == "joined"


async def test_foreign_conversation_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    alice, bob = await make_user(), await make_user()
    theirs = (await open_conversation(client, alice))["id"]
    mine = (await open_conversation(client, bob))["id"]
    async with socket_of(live, bob, f"conversation_id={theirs}") as ws:
        assert await close_code(ws) == 4404
    for query in ("conversation_id=abc", f"conversation_id={mine}&after_id={2**63}"):
        async with socket_of(live, bob, query) as ws:
            assert await close_code(ws) == 4400
    async with socket_of(live, bob) as ws:
        await join(ws, theirs)
        refused = await recv(ws)
        assert (refused["type"], refused["code"]) == ("error", "conversation_not_found")
        await say(ws, theirs, "hello")
        assert (await recv(ws))["code"] == "conversation_not_found"
        await ws.send(json.dumps({"type": "typing", "conversation_id": theirs}))
        assert (await recv(ws))["code"] == "not_joined"
        await join(ws, mine)  # the socket lives on
        assert (await recv(ws))["type"] == "joined"
    assert (await messages(client, alice, theirs)).json()["total"] == 1


# --- frames -----------------------------------------------------------------------------------


async def test_bad_frames_are_answered_with_an_error_and_the_socket_lives(
    client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    customer = await make_user()
    cid = (await open_conversation(client, customer))["id"]
    async with socket_of(live, customer, f"conversation_id={cid}") as ws:
        await recv_type(ws, "joined")
        for bad in (
            "not json",
            "[1, 2]",
            json.dumps({"type": "dance"}),
            json.dumps({"type": "message", "conversation_id": "1", "body": "x"}),
            json.dumps({"type": "message", "conversation_id": cid, "body": "x" * 4001}),
            json.dumps({"type": "message", "conversation_id": cid, "body": "<i></i>"}),
            json.dumps({"type": "join", "conversation_id": cid, "extra": 1}),
            "x" * 20_000,
            b"\x00\x01",
        ):
            await ws.send(bad)
            error = await recv(ws)
            assert error["type"] == "error", bad
            assert error["code"] in {"invalid_frame", "frame_too_large"}, error
        too_long = json.dumps({"type": "message", "conversation_id": cid, "body": "y" * 4001})
        await ws.send(too_long)
        assert "body" in (await recv(ws))["detail"]
        await say(ws, cid, "still here")
        assert (await recv_type(ws, "message"))["body"] == "still here"
    assert (await messages(client, customer, cid)).json()["total"] == 2


async def test_socket_messages_are_rate_limited(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    live: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = backend.settings.model_copy(update={"support_message_rate_limit": 2})
    monkeypatch.setattr(backend.runtime, "settings", settings)
    customer = await make_user()
    cid = (await open_conversation(client, customer))["id"]  # one
    async with socket_of(live, customer, f"conversation_id={cid}") as ws:
        await recv_type(ws, "joined")
        await say(ws, cid, "two")
        assert (await recv_type(ws, "message"))["body"] == "two"
        await say(ws, cid, "three")
        error = await recv_type(ws, "error")
        assert (error["code"], error["retry_after"] > 0) == ("message_rate_limited", True)


# --- resume, slow and closed clients --------------------------------------------------------------


async def test_resume_after_reconnect_misses_nothing_and_repeats_nothing(
    client: httpx.AsyncClient, make_user: MakeUser, live: str
) -> None:
    customer, agent = await make_user(), await make_user(Role.SUPPORT)
    cid = (await open_conversation(client, customer, message="m1"))["id"]
    async with socket_of(live, customer, f"conversation_id={cid}&after_id=0") as ws:
        first = await recv_type(ws, "message")
        assert first["body"] == "m1"
        assert (await recv(ws))["type"] == "joined"
    for body in ("m2", "m3", "m4"):  # while the customer is away
        assert (await send(client, agent, cid, body)).status_code == 201
    async with socket_of(live, customer) as ws:
        await join(ws, cid, after_id=first["id"])
        resumed = [await recv(ws) for _ in range(4)]
        assert [f.get("body") for f in resumed] == ["m2", "m3", "m4", None]
        assert resumed[-1]["type"] == "joined"
        await send(client, agent, cid, "m5")
        assert (await recv_type(ws, "message"))["body"] == "m5"  # not m2-m4 again
        await say(ws, cid, "m6")
        assert (await recv_type(ws, "message"))["body"] == "m6"


async def test_a_gap_in_published_frames_is_filled_from_the_database(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, live: str
) -> None:
    """A frame still on its way (another process) or lost (Redis away) while a later one
    arrives: the socket reads the missing messages in order, and sends each once."""
    customer = await make_user()
    cid = (await open_conversation(client, customer, message="m1"))["id"]
    async with socket_of(live, customer, f"conversation_id={cid}") as ws:
        await recv_type(ws, "joined")
        async with backend.runtime.sessionmaker() as session:  # saved, never published
            user = await session.get(User, customer.user.id)
            assert user is not None
            lost = await service.send(session, user, cid, "m2")
            await session.commit()
        m3 = await send(client, customer, cid, "m3")
        got = [await recv_type(ws, "message") for _ in range(2)]
        assert [(f["id"], f["body"]) for f in got] == [(lost.id, "m2"), (m3.json()["id"], "m3")]
        # The lost frame turning up late is not sent again.
        await backend.runtime.realtime.publish(service.channel(cid), service.message_frame(lost))
        await say(ws, cid, "m4")
        assert (await recv_type(ws, "message"))["body"] == "m4"


async def test_a_slow_client_is_dropped_and_never_holds_up_the_others(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    live: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub: Hub = backend.runtime.realtime
    monkeypatch.setattr(hub, "queue_size", 16)
    customer, agent = await make_user(), await make_user(Role.SUPPORT)
    cid = (await open_conversation(client, customer))["id"]
    port = int(live.rsplit(":", 1)[1])
    # The slow client reads nothing, through a tiny receive buffer.
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port))
    async with (
        connect(
            f"{live}{WS}?conversation_id={cid}",
            sock=raw,
            additional_headers=bearer(agent),
            max_queue=1,
            compression=None,  # the padding must take room, not deflate to nothing
        ) as slow,
        socket_of(live, customer, f"conversation_id={cid}") as fast,
    ):
        await recv_type(slow, "joined")
        await recv_type(fast, "joined")
        [slow_end] = [s for s in hub._subscribers if s.queue.maxsize == 16 and len(s.channels) == 2]
        pad, published = "x" * 4000, 0
        received: list[int] = []

        async def read_fast() -> None:
            while True:
                frame = await recv(fast)
                if frame["type"] == "typing":
                    received.append(frame["n"])

        reader = asyncio.create_task(read_fast())
        while not slow_end.overflowed.is_set() and published < 20_000:
            frame = {
                "type": "typing",
                "conversation_id": cid,
                "member_id": 0,
                "n": published,
                "pad": pad,
            }
            await hub.publish(service.channel(cid), frame)
            published += 1
            await asyncio.sleep(0)
        assert slow_end.overflowed.is_set()
        assert await close_code(slow) == 4408
        while len(received) < published:
            await asyncio.sleep(0.01)
        reader.cancel()
        assert received == list(range(published))
        sent = await send(client, customer, cid, "after the storm")
        assert (await recv_type(fast, "message"))["id"] == sent.json()["id"]


async def test_a_vanished_client_does_not_hold_up_the_others(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, live: str
) -> None:
    customer, agent = await make_user(), await make_user(Role.SUPPORT)
    cid = (await open_conversation(client, customer))["id"]
    before = backend.runtime.realtime.connections
    async with socket_of(live, customer, f"conversation_id={cid}") as stays:
        await recv_type(stays, "joined")
        gone = await connect(f"{live}{WS}?conversation_id={cid}", additional_headers=bearer(agent))
        await recv_type(gone, "joined")
        gone.transport.abort()  # no close frame: the network dropped it
        for n in range(3):
            assert (await send(client, customer, cid, f"m{n}")).status_code == 201
            assert (await recv_type(stays, "message"))["body"] == f"m{n}"
        async with asyncio.timeout(WAIT):
            while backend.runtime.realtime.connections > before + 1:
                await asyncio.sleep(0.02)


async def test_the_hub_closes_sockets_when_the_app_stops(
    backend: Backend, make_user: MakeUser
) -> None:
    from commissary.main import create_app

    customer = await make_user()
    app = create_app(backend.settings)
    async with uvicorn_server(app, lifespan="on") as url:
        ws = await connect(f"{url}{WS}", additional_headers=bearer(customer))
        await asyncio.sleep(0.1)  # let the server register the socket
    assert await close_code(ws) in {1001, 1012}
