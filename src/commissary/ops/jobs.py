"""The outbox relay: re-sends jobs whose dispatch was lost (queue down, worker died)."""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.db import after_commit, utcnow
from commissary.models import OutboxJob

log = structlog.get_logger(__name__)

GRACE = dt.timedelta(seconds=30)
MAX_RELAYS = 20
BATCH = 500


@jobs.job("ops.relay_outbox")
async def relay_outbox(session: AsyncSession) -> None:
    """Dispatch again every owed job that is due, older than a grace period and neither
    queued nor running. A job relayed ``MAX_RELAYS`` times is marked failed and logged."""
    runtime = jobs.runtime_of(session)
    now = utcnow()
    due = func.coalesce(OutboxJob.not_before, OutboxJob.created_at)
    rows = (
        await session.scalars(
            select(OutboxJob)
            .where(OutboxJob.failed_at.is_(None), due < now - GRACE)
            .order_by(OutboxJob.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    ).all()
    resend: list[OutboxJob] = []
    for row in rows:
        if runtime.jobs.is_pending(row.id):
            continue
        if row.relayed >= MAX_RELAYS:
            row.failed_at = now
            log.error("job_given_up", job=row.name, outbox_id=row.id, relayed=row.relayed)
            continue
        row.relayed += 1
        resend.append(row)
    if resend:
        log.warning("jobs_relayed", count=len(resend))

    async def _send() -> None:
        for row in resend:
            await runtime.jobs.dispatch(row.id, row.name, row.payload, None)

    after_commit(session, _send)
