"""The verification mail is sent by a job: a mail turned away by the SMTP server fails the
job, which is retried until the mail is accepted, and the mail arrives once."""

from __future__ import annotations

import datetime as dt

import httpx
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from commissary.core.jobs import RQDispatcher
from commissary.models import OutboxJob
from tests.conftest import Backend, code_in
from tests.servers import Mailbox
from tests.test_jobs import age_outbox, owed

NOVA = {"email": "nova@example.com", "password": "supernova-orbit-42", "full_name": "Nova"}


async def retry_owed_jobs(backend: Backend) -> None:
    """What happens later on its own: RQ's retry once its delay is over, or in process the
    outbox relay. Brought forward instead of waited for."""
    if backend.redis is None:
        await age_outbox(backend)
        await backend.run_job("ops.relay_outbox")
        await backend.run_jobs()
        return
    dispatcher = backend.runtime.jobs
    assert isinstance(dispatcher, RQDispatcher)
    async with backend.runtime.sessionmaker() as session:
        row_ids = (await session.scalars(select(OutboxJob.id))).all()
    registry = ScheduledJobRegistry(queue=dispatcher.queue)
    for row_id in row_ids:
        rq_job = Job.fetch(
            f"outbox-{row_id}",
            connection=dispatcher.connection,
            serializer=dispatcher.queue.serializer,
        )
        assert rq_job.get_status() == JobStatus.SCHEDULED  # RQ's Retry holds it
        registry.schedule(rq_job, dt.datetime.now(dt.UTC))
    await backend.run_jobs()


async def test_verification_mail_turned_away_by_smtp_is_retried_and_sent_once(
    client: httpx.AsyncClient, backend: Backend, mailbox: Mailbox
) -> None:
    mailbox.refuse = 1
    registered = await client.post("/api/v1/auth/register", json=NOVA)
    assert registered.status_code == 201, registered.text

    await backend.run_jobs()
    assert mailbox.to(NOVA["email"]) == []
    assert mailbox.refuse == 0  # the server was asked, and said "later"
    assert await owed(backend) == 1  # so the job is still owed

    await retry_owed_jobs(backend)
    [mail] = mailbox.to(NOVA["email"])
    assert await owed(backend) == 0

    # Done is done: the relay finds nothing to send again.
    await age_outbox(backend)
    await backend.run_job("ops.relay_outbox")
    await backend.settle()
    assert len(mailbox.to(NOVA["email"])) == 1

    verified = await client.post(
        "/api/v1/auth/verify", json={"email": NOVA["email"], "code": code_in(mail)}
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["is_verified"] is True
