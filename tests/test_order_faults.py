"""Races and faults: concurrent cancellations, a cancellation racing the worker, Redis down
when an order is placed, and a worker killed in the middle of a job."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest
from rq.registry import StartedJobRegistry
from sqlalchemy import select, text

from commissary.core.jobs import RQDispatcher
from commissary.models import OrderEvent
from tests.conftest import Backend, MakeUser
from tests.menu import make_menu
from tests.test_orders import ORDERS, body
from tests.test_worker_processes import command


async def events_of(backend: Backend, order_id: int) -> list[str]:
    async with backend.runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.sequence)
        )
        return [e.type for e in rows]


async def test_two_concurrent_cancellations_cancel_once(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    order = (await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)).json()
    first, second = await asyncio.gather(
        client.post(f"{ORDERS}/{order['id']}/cancel", headers=hero.headers),
        client.post(f"{ORDERS}/{order['id']}/cancel", headers=hero.headers),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    history = await events_of(backend, order["id"])
    assert history.count("status.cancelled") == 1
    assert history[-1] == "status.cancelled"


async def test_cancellation_racing_the_worker_ends_consistent(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    order = (await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)).json()
    cancel, _ = await asyncio.gather(
        client.post(f"{ORDERS}/{order['id']}/cancel", headers=hero.headers),
        backend.run_job("orders.process", order_id=order["id"]),
    )
    assert cancel.status_code == 200
    await backend.settle()  # a kitchen completion queued by the worker must not revive it
    final = (await client.get(f"{ORDERS}/{order['id']}", headers=hero.headers)).json()
    assert final["status"] == "cancelled"
    history = await events_of(backend, order["id"])
    assert history in (
        ["created", "status.cancelled"],
        ["created", "status.in_progress", "status.cancelled"],
    )


async def test_order_placed_while_redis_is_down_is_processed_when_it_returns(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    if backend.redis is None:
        pytest.skip("the embedded default has no Redis to lose")
    menu = await make_menu(backend)
    hero = await make_user()
    backend.redis.stop()
    try:
        placed = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
        assert placed.status_code == 202
    finally:
        backend.redis.start()
    order_url = f"{ORDERS}/{placed.json()['id']}"
    await backend.run_jobs()  # the wake was lost with Redis: nothing is queued
    assert (await client.get(order_url, headers=hero.headers)).json()["status"] == "pending"
    await backend.settle()  # the scheduler's periodic sweep finds the pending order
    assert (await client.get(order_url, headers=hero.headers)).json()["status"] == "completed"


async def test_order_of_a_worker_killed_mid_batch_is_processed_once(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, tmp_path: Path
) -> None:
    if backend.redis is None:
        pytest.skip("jobs run in the API process on the embedded default")
    menu = await make_menu(backend)
    hero = await make_user()
    order = (await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)).json()
    # Block the worker's batch where it writes the order's events, then kill it there.
    async with backend.runtime.engine.connect() as conn:
        await conn.execute(text("BEGIN"))
        await conn.execute(text("LOCK TABLE order_event IN EXCLUSIVE MODE"))
        with command(backend, "worker", tmp_path) as worker:
            dispatcher = backend.runtime.jobs
            assert isinstance(dispatcher, RQDispatcher)
            started = StartedJobRegistry(queue=dispatcher.queue)
            deadline = time.monotonic() + 30
            while started.count == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert started.count == 1, "the worker never started the job"
            await asyncio.sleep(0.5)  # let it reach the lock
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        await conn.execute(text("ROLLBACK"))
    order_url = f"{ORDERS}/{order['id']}"
    assert (await client.get(order_url, headers=hero.headers)).json()["status"] == "pending"
    await backend.settle()  # the next sweep claims the order the dead worker left
    done = (await client.get(order_url, headers=hero.headers)).json()
    assert done["status"] == "completed"
    assert await events_of(backend, order["id"]) == [
        "created",
        "status.in_progress",
        "status.completed",
    ]
