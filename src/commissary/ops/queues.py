"""The job queues as the technical service sees them: depth, workers and failed jobs, and
requeueing a failed job.

Two kinds of failed job exist. On RQ, a job whose retries ran out sits in RQ's failed
registry (kept ``failure_ttl``, a week). On either mode, a job the outbox relay re-sent
``MAX_RELAYS`` times is *given up*: its outbox row keeps the payload with ``failed_at`` set
(``outbox-<id>``). Without Redis the queue is this process's event loop: the figures are the
jobs running and scheduled in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.db import after_commit
from commissary.core.errors import NotFound
from commissary.core.jobs import InlineDispatcher, RQDispatcher
from commissary.core.runtime import Runtime
from commissary.models import OutboxJob
from commissary.ops import audit

MAX_FAILED = 100  # failed jobs listed, newest first
OUTBOX_ID = re.compile(r"outbox-([0-9]{1,18})")


@dataclass(frozen=True)
class FailedJob:
    id: str
    queue: str
    name: str | None
    source: str  # "rq": RQ's failed registry; "outbox": given up by the relay
    failed_at: dt.datetime | None
    error: str | None


@dataclass(frozen=True)
class QueueFigures:
    name: str
    backend: str  # "rq", or "inline" (jobs run in the api process)
    depth: int
    running: int
    scheduled: int
    failed: int
    workers: int


@dataclass(frozen=True)
class Snapshot:
    queues: list[QueueFigures]
    outbox_backlog: int
    outbox_given_up: int
    failed: list[FailedJob] = field(default_factory=list)


def _last_line(text: str | None) -> str | None:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else None


def _rq_figures(
    dispatcher: RQDispatcher, with_failed: bool
) -> tuple[list[QueueFigures], list[FailedJob]]:
    """RQ's own figures, queue by queue (synchronous client: run in a thread)."""
    figures: list[QueueFigures] = []
    failed: list[FailedJob] = []
    for queue in dispatcher.queues.values():
        found, failures = _rq_queue_figures(queue, with_failed)
        figures.append(found)
        failed += failures
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    failed.sort(key=lambda job: job.failed_at or oldest, reverse=True)  # newest first
    return figures, failed[:MAX_FAILED]


def _rq_queue_figures(queue: Any, with_failed: bool) -> tuple[QueueFigures, list[FailedJob]]:
    from rq import Worker
    from rq.job import Job
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    failed_registry = FailedJobRegistry(queue=queue)
    figures = QueueFigures(
        name=queue.name,
        backend="rq",
        depth=queue.count,
        running=StartedJobRegistry(queue=queue).count,
        scheduled=ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]
        failed=failed_registry.count,
        workers=Worker.count(queue=queue),
    )
    failed: list[FailedJob] = []
    if with_failed:
        ids = failed_registry.get_job_ids(0, MAX_FAILED - 1, desc=True)
        found = Job.fetch_many(ids, connection=queue.connection, serializer=queue.serializer)
        for job in found:
            if job is None:
                continue
            args: Any = job.args or ()
            failed.append(
                FailedJob(
                    id=job.id,
                    queue=queue.name,
                    name=str(args[0]) if args else None,
                    source="rq",
                    failed_at=job.ended_at.replace(tzinfo=dt.UTC) if job.ended_at else None,
                    error=_last_line(getattr(job.latest_result(), "exc_string", None)),
                )
            )
    return figures, failed


async def _outbox(session: AsyncSession) -> tuple[int, int]:
    given_up = OutboxJob.failed_at.is_not(None)
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(case((given_up, 0), else_=1)), 0),
                func.coalesce(func.sum(case((given_up, 1), else_=0)), 0),
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def snapshot(runtime: Runtime, session: AsyncSession, *, with_failed: bool) -> Snapshot:
    """The queues' figures now; with ``with_failed``, the newest failed jobs too."""
    backlog, given_up = await _outbox(session)
    failed: list[FailedJob] = []
    dispatcher = runtime.jobs
    if isinstance(dispatcher, RQDispatcher):
        queues, failed = await asyncio.to_thread(_rq_figures, dispatcher, with_failed)
    else:
        assert isinstance(dispatcher, InlineDispatcher)
        queues = [
            QueueFigures(
                name="inline",
                backend="inline",
                depth=0,  # a job starts as soon as its transaction commits
                running=dispatcher.running,
                scheduled=dispatcher.scheduled,
                failed=given_up,
                workers=1,
            )
        ]
    if with_failed:
        rows = (
            await session.scalars(
                select(OutboxJob)
                .where(OutboxJob.failed_at.is_not(None))
                .order_by(OutboxJob.failed_at.desc(), OutboxJob.id.desc())
                .limit(MAX_FAILED)
            )
        ).all()
        seen = {job.id for job in failed}
        failed += [
            FailedJob(f"outbox-{r.id}", queues[0].name, r.name, "outbox", r.failed_at, None)
            for r in rows
            if f"outbox-{r.id}" not in seen
        ]
    return Snapshot(queues, backlog, given_up, failed)


def _failed_registries(dispatcher: RQDispatcher) -> list[Any]:
    from rq.registry import FailedJobRegistry

    return [FailedJobRegistry(queue=queue) for queue in dispatcher.queues.values()]


def _is_failed_in_rq(dispatcher: RQDispatcher, job_id: str) -> bool:
    return any(job_id in registry for registry in _failed_registries(dispatcher))


def _requeue_in_rq(dispatcher: RQDispatcher, job_id: str) -> None:
    from rq.exceptions import InvalidJobOperation, NoSuchJobError

    for registry in _failed_registries(dispatcher):
        # Gone meanwhile (requeued twice at once, or expired): nothing left to run again.
        with contextlib.suppress(NoSuchJobError, InvalidJobOperation):
            if job_id in registry:
                registry.requeue(job_id)


async def requeue(session: AsyncSession, runtime: Runtime, job_id: str, actor_id: int) -> str:
    """Run a failed job again, once this transaction commits; answers where it was found
    (``outbox`` or ``rq``). A given-up outbox job gets its relay count back and is
    dispatched (its RQ failed entry, if any, is dropped then); an RQ failed job goes back on
    its queue."""
    dispatcher = runtime.jobs
    matched = OUTBOX_ID.fullmatch(job_id)
    row = None
    if matched:
        row = await session.get(OutboxJob, int(matched.group(1)), with_for_update=True)
    if row is not None and row.failed_at is not None:
        row.failed_at = None
        row.relayed = 0
        outbox_id, name, payload = row.id, row.name, row.payload

        async def _send() -> None:
            if isinstance(dispatcher, RQDispatcher):
                await asyncio.to_thread(_forget_failed, dispatcher, job_id)
            await dispatcher.dispatch(outbox_id, name, payload, None)

        after_commit(session, _send)
        source = "outbox"
    elif isinstance(dispatcher, RQDispatcher) and await asyncio.to_thread(
        _is_failed_in_rq, dispatcher, job_id
    ):
        rq_dispatcher = dispatcher

        async def _requeue() -> None:
            await asyncio.to_thread(_requeue_in_rq, rq_dispatcher, job_id)

        after_commit(session, _requeue)
        source = "rq"
    else:
        raise NotFound(f"no failed job {job_id!r}", code="job_not_found")
    audit.record(
        session,
        actor_id=actor_id,
        action="job.requeue",
        entity="job",
        entity_id=job_id,
        source=source,
    )
    return source


def _forget_failed(dispatcher: RQDispatcher, job_id: str) -> None:
    for registry in _failed_registries(dispatcher):
        registry.remove(job_id)
