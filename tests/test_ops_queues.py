"""GET /ops/queues, POST /ops/queues/failed/{job_id}/requeue and GET /ops/audit-log: admin
only, on both modes (RQ's failed registry with a real worker; the outbox relay's given-up
jobs on either)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
from rq.job import JobStatus

from commissary import worker
from commissary.core.db import commit
from commissary.core.jobs import BULK_QUEUE_NAME, QUEUE_NAME, RQ_ENTRY, RQDispatcher, queue_name
from commissary.models import AuditLog, OutboxJob, Role
from commissary.notifications import customer_mail, staff_mail
from tests.conftest import Backend, MakeUser, ThreadWorker

QUEUES = "/api/v1/ops/queues"
AUDIT = "/api/v1/ops/audit-log"
UTC = dt.UTC


async def given_up(backend: Backend) -> int:
    """A job the outbox relay gave up on, as the relay leaves it."""
    async with backend.runtime.sessionmaker() as session:
        row = OutboxJob(
            name="ops.relay_outbox", payload={}, relayed=20, failed_at=dt.datetime.now(UTC)
        )
        session.add(row)
        await commit(session)
    return row.id


async def outbox_row(backend: Backend, outbox_id: int) -> OutboxJob | None:
    async with backend.runtime.sessionmaker() as session:
        return await session.get(OutboxJob, outbox_id)


async def test_a_given_up_job_is_listed_and_runs_again_once_requeued(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    outbox_id = await given_up(backend)
    answer = await client.get(QUEUES, headers=admin.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["outbox_given_up"] == 1
    expected = (
        [("inline", "inline")]
        if backend.redis is None
        else [("commissary", "rq"), ("commissary-bulk", "rq")]
    )
    assert [(q["name"], q["backend"]) for q in body["queues"]] == expected
    [failed] = [job for job in body["failed"] if job["source"] == "outbox"]
    assert (failed["id"], failed["name"]) == (f"outbox-{outbox_id}", "ops.relay_outbox")
    requeued = await client.post(
        f"{QUEUES}/failed/outbox-{outbox_id}/requeue", headers=admin.headers
    )
    assert requeued.status_code == 200, requeued.text
    assert requeued.json() == {"job_id": f"outbox-{outbox_id}", "source": "outbox"}
    await backend.run_jobs()
    assert await outbox_row(backend, outbox_id) is None  # the job ran and took its row
    after = (await client.get(QUEUES, headers=admin.headers)).json()
    assert (after["outbox_given_up"], after["failed"]) == (0, [])
    audit = (
        await client.get(AUDIT, params={"action": "job.requeue"}, headers=admin.headers)
    ).json()
    assert [(e["entity_id"], e["actor_id"]) for e in audit["items"]] == [
        (f"outbox-{outbox_id}", admin.user.id)
    ]
    again = await client.post(f"{QUEUES}/failed/outbox-{outbox_id}/requeue", headers=admin.headers)
    assert (again.status_code, again.json()["code"]) == (404, "job_not_found")


async def test_an_rq_job_whose_retries_ran_out_is_requeued(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    if backend.redis is None:
        pytest.skip("the embedded mode has no RQ failed registry")
    dispatcher = backend.runtime.jobs
    assert isinstance(dispatcher, RQDispatcher)
    admin = await make_user(Role.ADMIN)
    # A payload the job does not take: the real worker fails it (no retry asked).
    job = dispatcher.queue.enqueue(RQ_ENTRY, args=("ops.relay_outbox", None, {"bogus": 1}))
    await backend.run_jobs()
    body = (await client.get(QUEUES, headers=admin.headers)).json()
    queue, bulk = body["queues"]
    assert (queue["name"], queue["failed"], queue["depth"]) == ("commissary", 1, 0)
    assert (bulk["name"], bulk["failed"], bulk["depth"]) == ("commissary-bulk", 0, 0)
    [failed] = body["failed"]
    assert (failed["id"], failed["source"], failed["name"]) == (job.id, "rq", "ops.relay_outbox")
    assert "TypeError" in failed["error"]
    requeued = await client.post(f"{QUEUES}/failed/{job.id}/requeue", headers=admin.headers)
    assert requeued.json() == {"job_id": job.id, "source": "rq"}
    after = (await client.get(QUEUES, headers=admin.headers)).json()
    assert (after["queues"][0]["depth"], after["queues"][0]["failed"], after["failed"]) == (
        1,
        0,
        [],
    )
    await backend.run_jobs()  # it fails again: back in the registry, ready for another try
    assert (await client.get(QUEUES, headers=admin.headers)).json()["queues"][0]["failed"] == 1


@pytest.mark.parametrize(
    ("job_id", "status"), [("outbox-999999", 404), ("no-such-job", 404), ("bad id!", 422)]
)
async def test_requeueing_what_did_not_fail_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser, job_id: str, status: int
) -> None:
    admin = await make_user(Role.ADMIN)
    answer = await client.post(f"{QUEUES}/failed/{job_id}/requeue", headers=admin.headers)
    assert answer.status_code == status, answer.text


async def test_a_job_still_owed_is_not_requeued(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    async with backend.runtime.sessionmaker() as session:
        row = OutboxJob(name="ops.relay_outbox", payload={})
        session.add(row)
        await commit(session)
    answer = await client.post(f"{QUEUES}/failed/outbox-{row.id}/requeue", headers=admin.headers)
    assert answer.status_code == 404
    assert (await outbox_row(backend, row.id)) is not None


@pytest.mark.parametrize("role", [Role.SALES, Role.SUPPORT, Role.CUSTOMER])
async def test_only_admins_see_operations(
    client: httpx.AsyncClient, make_user: MakeUser, role: Role
) -> None:
    account = await make_user(role)
    assert (await client.get(QUEUES, headers=account.headers)).status_code == 403
    assert (await client.get(AUDIT, headers=account.headers)).status_code == 403
    refused = await client.post(f"{QUEUES}/failed/outbox-1/requeue", headers=account.headers)
    assert refused.status_code == 403
    assert (await client.get(QUEUES)).status_code == 401


async def audit_entries(backend: Backend, *entries: dict[str, Any]) -> None:
    async with backend.runtime.sessionmaker() as session:
        session.add_all(AuditLog(**entry) for entry in entries)
        await commit(session)


async def test_the_audit_log_is_filtered_by_actor_action_entity_and_time(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    async with backend.runtime.sessionmaker() as session:
        await session.execute(AuditLog.__table__.delete())
        await commit(session)
    at = dt.datetime(2026, 12, 1, 12, tzinfo=UTC)
    await audit_entries(
        backend,
        {
            "actor_id": 7,
            "action": "product.update",
            "entity": "product",
            "entity_id": "3",
            "at": at,
        },
        {
            "actor_id": 7,
            "action": "product.delete",
            "entity": "product",
            "entity_id": "4",
            "at": at + dt.timedelta(hours=1),
        },
        {
            "actor_id": 8,
            "action": "user.create",
            "entity": "user",
            "entity_id": "9",
            "at": at + dt.timedelta(days=1),
            "data": {"role": "waiter"},
        },
    )

    async def actions(**params: str) -> list[str]:
        answer = await client.get(AUDIT, params=params, headers=admin.headers)
        assert answer.status_code == 200, answer.text
        return [entry["action"] for entry in answer.json()["items"]]

    assert await actions() == ["user.create", "product.delete", "product.update"]
    assert await actions(actor_id="7") == ["product.delete", "product.update"]
    assert await actions(action__contains="product.") == ["product.delete", "product.update"]
    assert await actions(entity="user", entity_id="9") == ["user.create"]
    assert await actions(at__gte="2026-12-01T12:30:00Z", at__lt="2026-12-02T12:00:00Z") == [
        "product.delete"
    ]
    assert await actions(sort="at") == ["product.update", "product.delete", "user.create"]
    page = (await client.get(AUDIT, params={"limit": 1}, headers=admin.headers)).json()
    assert (page["total"], page["items"][0]["data"]) == (3, {"role": "waiter"})
    for params, parameter in (
        ({"password": "x"}, "password"),
        ({"at__gte": "yesterday"}, "at__gte"),
        ({"sort": "data"}, "sort"),
    ):
        refused = await client.get(AUDIT, params=params, headers=admin.headers)
        assert (refused.status_code, refused.json()["parameter"]) == (400, parameter)


async def test_workers_take_order_work_before_mail(backend: Backend) -> None:
    """Mail jobs wait in the bulk queue while order work is queued: a worker that may run
    one job runs the order work, though the mail was queued first."""
    if backend.redis is None:
        pytest.skip("the embedded mode runs every job at once, in process")
    dispatcher = backend.runtime.jobs
    assert isinstance(dispatcher, RQDispatcher)
    assert queue_name(staff_mail.JOB) == queue_name(customer_mail.JOB) == BULK_QUEUE_NAME
    assert queue_name("orders.sweep") == QUEUE_NAME
    mail = dispatcher.queues[BULK_QUEUE_NAME].enqueue(
        RQ_ENTRY, args=(staff_mail.JOB, None, {"order_ids": []})
    )
    sweep = dispatcher.queues[QUEUE_NAME].enqueue(RQ_ENTRY, args=("orders.sweep", None, {}))
    assert backend._executor is not None
    rq_worker = worker.make_worker(backend.settings, worker_class=ThreadWorker)
    await asyncio.get_running_loop().run_in_executor(
        backend._executor, lambda: rq_worker.work(burst=True, max_jobs=1)
    )
    assert sweep.get_status(refresh=True) == JobStatus.FINISHED
    assert mail.get_status(refresh=True) == JobStatus.QUEUED
    await backend.run_jobs()
    assert mail.get_status(refresh=True) == JobStatus.FINISHED
