"""A request's wake-up of a batch job waits ``JOB_WAKE_DELAY`` before the run is queued, so
the orders placed in that moment share one run; a stopping api queues what it still holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select

from commissary.core.jobs import QUEUE_NAME, RQDispatcher
from commissary.events.sequencer import SEQUENCE_JOB
from commissary.models import Order, OrderStatus
from commissary.orders.kitchen import PROCESS_JOB
from tests.conftest import Backend, MakeUser, another_api
from tests.menu import make_menu
from tests.servers import Mailbox
from tests.test_orders import ORDERS, body

DELAY = 0.5


@pytest.fixture
async def delayed_api(
    backend: Backend, smtp: tuple[int, Mailbox]
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A second API on the same PostgreSQL and Redis, its wake-ups delayed by ``DELAY``."""
    if backend.redis is None:
        pytest.skip("the embedded default runs its jobs in process, without wake-ups")
    async with another_api(backend, smtp[0], job_wake_delay=DELAY) as api:
        yield api


def queued(backend: Backend, name: str) -> int:
    """Runs of job ``name`` waiting in the main queue."""
    dispatcher = backend.runtime.jobs
    assert isinstance(dispatcher, RQDispatcher)
    return sum(1 for job in dispatcher.queues[QUEUE_NAME].get_jobs() if job.args[0] == name)


async def test_orders_placed_within_the_delay_share_one_run_of_each_batch_job(
    backend: Backend, delayed_api: tuple[FastAPI, httpx.AsyncClient], make_user: MakeUser
) -> None:
    app, http = delayed_api
    menu = await make_menu(backend)
    hero = await make_user()
    for _ in range(3):
        placed = await http.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
        assert placed.status_code == 202, placed.text
    # The first placement's wake is waiting out the delay; the two others found it set.
    assert (queued(backend, PROCESS_JOB), queued(backend, SEQUENCE_JOB)) == (0, 0)
    dispatcher = app.state.runtime.jobs
    assert isinstance(dispatcher, RQDispatcher)
    async with asyncio.timeout(10 * DELAY):
        while queued(backend, PROCESS_JOB) == 0:
            await asyncio.sleep(0.05)
    assert (queued(backend, PROCESS_JOB), queued(backend, SEQUENCE_JOB)) == (1, 1)

    await backend.run_jobs()
    async with backend.runtime.sessionmaker() as session:
        statuses = (await session.scalars(select(Order.status))).all()
    assert len(statuses) == 3
    assert OrderStatus.PENDING not in statuses


def dispatcher_of(backend: Backend, wake_delay: float) -> tuple[RQDispatcher, Redis]:
    """A dispatcher of this test's own on the backend's Redis, its wakes delayed."""
    if backend.redis is None or backend.settings.redis_url is None:
        pytest.skip("the embedded default runs its jobs in process, without wake-ups")
    redis = backend.runtime.redis
    assert redis is not None
    return RQDispatcher(backend.settings.redis_url, redis, wake_delay=wake_delay), redis


async def test_a_dispatcher_that_closes_queues_the_runs_it_was_delaying(backend: Backend) -> None:
    dispatcher, _ = dispatcher_of(backend, 60)
    await dispatcher.wake_all([PROCESS_JOB])
    await asyncio.sleep(0.1)
    assert queued(backend, PROCESS_JOB) == 0
    await dispatcher.close()
    assert queued(backend, PROCESS_JOB) == 1


async def test_wakes_while_the_process_holds_a_run_send_nothing(backend: Backend) -> None:
    """A run this process is about to queue starts after every wake made meanwhile: they
    need no Redis round trip, and no second run."""
    dispatcher, redis = dispatcher_of(backend, 60)
    key = dispatcher.WAKE_PREFIX + PROCESS_JOB
    await dispatcher.wake_all([PROCESS_JOB])
    async with asyncio.timeout(5):
        while not await redis.exists(key):
            await asyncio.sleep(0.01)
    await redis.delete(key)  # had the next wake gone to Redis, it would set the key again
    await dispatcher.wake_all([PROCESS_JOB, SEQUENCE_JOB])
    async with asyncio.timeout(5):
        while not await redis.exists(dispatcher.WAKE_PREFIX + SEQUENCE_JOB):
            await asyncio.sleep(0.01)
    assert not await redis.exists(key)
    await dispatcher.close()
    assert (queued(backend, PROCESS_JOB), queued(backend, SEQUENCE_JOB)) == (1, 1)


async def test_a_wake_after_the_run_is_pushed_reaches_redis(backend: Backend) -> None:
    """Once the held run is on the queue it may start at any moment: a later wake must set
    the key again (and queue another run) if that run already cleared it."""
    dispatcher, redis = dispatcher_of(backend, 0.2)
    key = dispatcher.WAKE_PREFIX + PROCESS_JOB
    await dispatcher.wake_all([PROCESS_JOB])
    async with asyncio.timeout(5):
        while queued(backend, PROCESS_JOB) == 0:
            await asyncio.sleep(0.01)
    await dispatcher.clear_wake(PROCESS_JOB)  # the run starts
    await dispatcher.wake_all([PROCESS_JOB])
    async with asyncio.timeout(5):
        while queued(backend, PROCESS_JOB) < 2:
            await asyncio.sleep(0.01)
    assert await redis.exists(key)
    await dispatcher.close()
