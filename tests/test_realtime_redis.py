"""Realtime fan-out through Redis: two real `commissary serve` processes share a
conversation, tickets work across processes, and sockets live through a Redis outage
and catch up when it returns."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator

import httpx
import pytest
from structlog.testing import capture_logs
from websockets.asyncio.client import connect

from commissary.core.realtime import Hub
from commissary.models import Role
from tests.conftest import Backend, MakeUser
from tests.test_cli import clean_env, serve
from tests.test_support import open_conversation, send
from tests.test_support_ws import (
    WS,
    bearer,
    close_code,
    live,  # noqa: F401 - a fixture
    recv,
    recv_type,
    say,
)


@pytest.fixture(scope="module")
def two_servers(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Two api processes on the backend's PostgreSQL and Redis, signing with its key."""
    if backend.redis is None:
        pytest.skip("the embedded default fans out in process; there is no second process")
    assert backend.settings.secret_key is not None
    cwd = tmp_path_factory.mktemp("two-servers")
    env = clean_env(cwd / "unused.db", LOG_LEVEL="WARNING", ENVIRONMENT="test")
    env.update(
        DATABASE_URL=backend.settings.database_url,
        REDIS_URL=backend.redis.url,
        SECRET_KEY=backend.settings.secret_key.get_secret_value(),
    )
    with serve(cwd, env, "--no-migrate") as first, serve(cwd, env, "--no-migrate") as second:
        yield first.base_url, second.base_url


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + WS


async def test_a_message_crosses_two_api_processes(
    client: httpx.AsyncClient, make_user: MakeUser, two_servers: tuple[str, str]
) -> None:
    first, second = two_servers
    customer, agent = await make_user(), await make_user(Role.SUPPORT)
    cid = (await open_conversation(client, customer))["id"]
    async with (
        connect(f"{ws_url(first)}?conversation_id={cid}", additional_headers=bearer(customer)) as a,
        connect(f"{ws_url(second)}?conversation_id={cid}", additional_headers=bearer(agent)) as b,
    ):
        await recv_type(a, "joined")
        await recv_type(b, "joined")
        await say(a, cid, "hello from the first process")
        crossed = await recv_type(b, "message")
        assert crossed["body"] == "hello from the first process"
        await say(b, cid, "and back from the second")
        assert (await recv_type(a, "message"))["body"] == "hello from the first process"
        assert (await recv_type(a, "message"))["body"] == "and back from the second"


async def test_a_ticket_from_one_process_opens_a_socket_on_another_once(
    make_user: MakeUser, two_servers: tuple[str, str]
) -> None:
    first, second = two_servers
    customer = await make_user()
    async with httpx.AsyncClient(base_url=first) as http:
        response = await http.post("/api/v1/ws-tickets", headers=customer.headers)
    ticket = response.json()["ticket"]
    async with connect(f"{ws_url(second)}?ticket={ticket}") as ws:
        await ws.send(json.dumps({"type": "join", "conversation_id": 999}))
        assert (await recv(ws))["code"] == "conversation_not_found"  # signed in, alive
    async with connect(f"{ws_url(first)}?ticket={ticket}") as ws:
        assert await close_code(ws) == 4401


async def test_sockets_keep_working_while_redis_is_away_and_catch_up_when_it_returns(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    two_servers: tuple[str, str],
    live: str,  # noqa: F811 - the fixture imported above
) -> None:
    redis = backend.redis
    assert redis is not None
    other, _ = two_servers
    customer, agent = await make_user(), await make_user(Role.SUPPORT)
    cid = (await open_conversation(client, customer))["id"]
    url = f"{live}{WS}?conversation_id={cid}"
    with capture_logs() as logs:
        async with (
            connect(url, additional_headers=bearer(customer)) as mine,
            connect(url, additional_headers=bearer(agent)) as theirs,
            httpx.AsyncClient(base_url=other) as elsewhere,
        ):
            await recv_type(mine, "joined")
            await recv_type(theirs, "joined")
            redis.stop()
            try:
                await say(mine, cid, "while Redis is away")
                assert (await recv_type(theirs, "message"))["body"] == "while Redis is away"
                assert (await recv_type(mine, "message"))["body"] == "while Redis is away"
                # Saved by the other process, which cannot publish it to this one now.
                away = await elsewhere.post(
                    f"/api/v1/support/conversations/{cid}/messages",
                    json={"body": "from the other process"},
                    headers=agent.headers,
                )
                assert away.status_code == 201, away.text
            finally:
                redis.start()
            # No reconnect: the subscription comes back and the socket re-reads what it missed.
            caught_up = await recv_type(mine, "message")
            assert (caught_up["id"], caught_up["seq"]) == (away.json()["id"], 3)
            after = await elsewhere.post(
                f"/api/v1/support/conversations/{cid}/messages",
                json={"body": "Redis is back"},
                headers=agent.headers,
            )
            assert after.status_code == 201
            assert (await recv_type(mine, "message"))["body"] == "Redis is back"
    events = [e["event"] for e in logs if e.get("component") == "realtime"]
    assert events[:1] == ["redis_unavailable"]
    assert "redis_available" in events


async def test_while_redis_hangs_messages_reach_this_process_then_the_others(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    two_servers: tuple[str, str],
    live: str,  # noqa: F811 - the fixture imported above
) -> None:
    redis = backend.redis
    assert redis is not None and redis.process is not None
    other, _ = two_servers
    customer, agent = await make_user(), await make_user(Role.SUPPORT)
    cid = (await open_conversation(client, customer))["id"]
    query = f"?conversation_id={cid}"
    async with (
        connect(f"{live}{WS}{query}", additional_headers=bearer(customer)) as here,
        connect(f"{ws_url(other)}{query}", additional_headers=bearer(agent)) as there,
    ):
        await recv_type(here, "joined")
        await recv_type(there, "joined")
        redis.process.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
        try:
            for body in ("one", "two", "three"):
                assert (await send(client, customer, cid, body)).status_code == 201
                assert (await recv_type(here, "message"))["body"] == body
        finally:
            redis.process.send_signal(signal.SIGCONT)
        # The next publish first tells the other processes to re-read what they missed.
        await asyncio.sleep(Hub.PROBE_EVERY)
        assert (await send(client, customer, cid, "four")).status_code == 201
        got = [(await recv_type(there, "message"))["body"] for _ in range(4)]
        assert got == ["one", "two", "three", "four"]
