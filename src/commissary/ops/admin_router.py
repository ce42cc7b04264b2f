"""The technical service's endpoints: job queues and the audit log. Admin only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from commissary.core.deps import RuntimeDep, SessionDep
from commissary.core.listing import ListQuery, Page, list_query
from commissary.ops import audit, queues
from commissary.ops.schemas import AuditLogRead, QueuesRead, RequeuedRead
from commissary.users.dependencies import AdminUser

router = APIRouter(prefix="/ops", tags=["ops"])

JobId = Annotated[
    str,
    Path(
        description="A failed job's `id` as `GET /ops/queues` lists it.",
        pattern=r"^[A-Za-z0-9:_-]{1,100}$",
        examples=["outbox-42"],
    ),
]


@router.get("/queues", response_model=QueuesRead)
async def read_queues(_: AdminUser, runtime: RuntimeDep, session: SessionDep) -> object:
    """Admin. Each job queue's depth, running, scheduled and failed jobs and workers, the
    outbox backlog, and the newest failed jobs. Without `REDIS_URL` the queue is this api
    process's (`inline`)."""
    return await queues.snapshot(runtime, session, with_failed=True)


@router.post(
    "/queues/failed/{job_id}/requeue",
    response_model=RequeuedRead,
    responses={404: {"description": "No failed job has this id (any more)."}},
)
async def requeue_failed_job(
    job_id: JobId, admin: AdminUser, runtime: RuntimeDep, session: SessionDep
) -> object:
    """Admin. Run a failed job again (once this request commits): an RQ job goes back on its
    queue, a job the outbox relay gave up is dispatched afresh. Audited as `job.requeue`."""
    source = await queues.requeue(session, runtime, job_id, admin.id)
    return {"job_id": job_id, "source": source}


@router.get("/audit-log", response_model=Page[AuditLogRead])
async def list_audit_log(
    _: AdminUser,
    query: Annotated[ListQuery, Depends(list_query(audit.AUDIT_LOG_LIST))],
    session: SessionDep,
) -> object:
    """Admin. Who did what, newest first. Filters: `actor_id`, `action`, `entity`,
    `entity_id`, `at` (with `__op` suffixes: `at__gte=…&at__lt=…` for a range); `search`
    (action, entity, entity id), `sort`, `limit` (≤ 100), `offset`."""
    items, total = await audit.list_entries(session, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}
