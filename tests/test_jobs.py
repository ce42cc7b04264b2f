"""The job outbox: jobs run after commit, once, and survive a queue outage or a failure."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import httpx
import pytest
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.db import commit, rollback
from commissary.core.jobs import RQDispatcher
from commissary.models import OutboxJob
from tests.conftest import Backend
from tests.servers import Mailbox

runs: Counter[str] = Counter()
failures_left: Counter[str] = Counter()


@jobs.job("tests.record")
async def record(session: AsyncSession, key: str) -> None:
    if failures_left[key] > 0:
        failures_left[key] -= 1
        raise RuntimeError(f"planned failure of {key}")
    runs[key] += 1


@pytest.fixture(autouse=True)
def _reset_counters() -> None:
    runs.clear()
    failures_left.clear()


async def owed(backend: Backend) -> int:
    async with backend.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxJob)) or 0)


async def age_outbox(backend: Backend, seconds: int = 120) -> None:
    """Make every owed job look older than the relay's grace period."""
    async with backend.runtime.sessionmaker() as session:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
        await session.execute(update(OutboxJob).values(created_at=past))
        await session.commit()


async def test_job_runs_only_after_commit(backend: Backend) -> None:
    async with backend.runtime.sessionmaker() as session:
        jobs.enqueue(session, "tests.record", key="kept")
        await commit(session)
    async with backend.runtime.sessionmaker() as session:
        jobs.enqueue(session, "tests.record", key="dropped")
        await session.flush()
        await rollback(session)
    await backend.run_jobs()
    assert runs == Counter({"kept": 1})
    assert await owed(backend) == 0


async def test_a_job_delivered_twice_runs_once(backend: Backend) -> None:
    async with backend.runtime.sessionmaker() as session:
        jobs.enqueue(session, "tests.record", key="once")
        await session.flush()
        outbox_id = await session.scalar(select(OutboxJob.id))
        await commit(session)
    await backend.run_jobs()
    await jobs.execute(backend.runtime, "tests.record", outbox_id, {"key": "once"})
    assert runs["once"] == 1


async def test_failed_job_is_kept_and_retried(backend: Backend) -> None:
    failures_left["flaky"] = 1
    async with backend.runtime.sessionmaker() as session:
        jobs.enqueue(session, "tests.record", key="flaky")
        await commit(session)
    await backend.run_jobs()
    assert runs["flaky"] == 0
    assert await owed(backend) == 1  # the failure left the job owed
    await age_outbox(backend)
    if backend.redis is None:
        # In process: the relay sends it again.
        await backend.run_job("ops.relay_outbox")
    else:
        # RQ scheduled its own retry; the relay must not send a duplicate meanwhile.
        await backend.run_job("ops.relay_outbox")
        async with backend.runtime.sessionmaker() as session:
            row = await session.scalar(select(OutboxJob))
        assert row is not None
        assert row.relayed == 0
        dispatcher = backend.runtime.jobs
        assert isinstance(dispatcher, RQDispatcher)
        rq_job = Job.fetch(
            f"outbox-{row.id}",
            connection=dispatcher.connection,
            serializer=dispatcher.queue.serializer,
        )
        assert rq_job.get_status() == JobStatus.SCHEDULED
        # Bring the retry forward instead of waiting for it.
        ScheduledJobRegistry(queue=dispatcher.queue).schedule(rq_job, dt.datetime.now(dt.UTC))
    await backend.run_jobs()
    assert runs["flaky"] == 1
    assert await owed(backend) == 0


async def test_registration_mail_survives_a_redis_outage(
    client: httpx.AsyncClient, backend: Backend, mailbox: Mailbox
) -> None:
    if backend.redis is None:
        pytest.skip("the embedded default has no Redis to lose")
    backend.redis.stop()
    try:
        response = await client.post(
            "/api/v1/auth/register",
            json={
                "email": "rocket@example.com",
                "password": "racoon-99-tree",
                "full_name": "Rocket",
            },
        )
        assert response.status_code == 201  # the account is stored even though Redis is down
    finally:
        backend.redis.start()
    assert await owed(backend) == 1
    await age_outbox(backend)
    await backend.run_job("ops.relay_outbox")
    await backend.run_jobs()
    assert len(mailbox.to("rocket@example.com")) == 1
    assert await owed(backend) == 0


async def test_relay_gives_up_after_its_budget(backend: Backend) -> None:
    from commissary.ops.jobs import MAX_RELAYS

    async with backend.runtime.sessionmaker() as session:
        session.add(OutboxJob(name="tests.record", payload={"key": "x"}, relayed=MAX_RELAYS))
        await session.commit()
    await age_outbox(backend)
    await backend.run_job("ops.relay_outbox")
    async with backend.runtime.sessionmaker() as session:
        row = await session.scalar(select(OutboxJob))
    assert row is not None
    assert row.failed_at is not None
    await backend.run_jobs()
    assert runs["x"] == 0
