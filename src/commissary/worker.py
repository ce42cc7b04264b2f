"""The RQ side: the job entry point a worker calls, the worker, and the cron scheduler.

Workers are RQ ``SimpleWorker``s: jobs run in the worker process on one long-lived event
loop and connection pool, instead of forking a process (and a new pool) per job. Run more
worker processes to scale out."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import structlog

from commissary import tasks
from commissary.config import Settings
from commissary.core import jobs
from commissary.core.runtime import Runtime

log = structlog.get_logger(__name__)

_local = threading.local()
_preset: tuple[Settings] | None = None


def use_settings(settings: Settings | None) -> None:
    """Make workers of this process use ``settings`` instead of the environment (tests)."""
    global _preset
    _preset = (settings,) if settings else None


def _context() -> tuple[asyncio.AbstractEventLoop, Runtime]:
    ctx: tuple[asyncio.AbstractEventLoop, Runtime] | None = getattr(_local, "ctx", None)
    if ctx is None:
        tasks.load()
        settings = _preset[0] if _preset else Settings()
        ctx = (asyncio.new_event_loop(), Runtime.create(settings))
        _local.ctx = ctx
    return ctx


def close_context() -> None:
    ctx = getattr(_local, "ctx", None)
    if ctx is not None:
        loop, runtime = ctx
        loop.run_until_complete(runtime.close())
        loop.close()
        _local.ctx = None


def run_job(name: str, outbox_id: int | None, payload: dict[str, Any]) -> None:
    """What RQ calls: run job ``name`` in this worker's event loop."""
    loop, runtime = _context()
    structlog.contextvars.bind_contextvars(job=name, outbox_id=outbox_id)
    try:
        loop.run_until_complete(jobs.execute(runtime, name, outbox_id, payload))
    finally:
        structlog.contextvars.unbind_contextvars("job", "outbox_id")


def run_periodic(name: str) -> None:
    run_job(name, None, {})


def make_worker(settings: Settings, *, name: str | None = None, worker_class: Any = None) -> Any:
    from redis import Redis
    from rq import Queue, SimpleWorker
    from rq.serializers import JSONSerializer

    assert settings.redis_url
    connection = Redis.from_url(settings.redis_url)
    queue = Queue(jobs.QUEUE_NAME, connection=connection, serializer=JSONSerializer)
    cls = worker_class or SimpleWorker
    return cls([queue], connection=connection, serializer=JSONSerializer, name=name)


def start_worker(settings: Settings, *, burst: bool = False) -> None:
    tasks.load()
    worker = make_worker(settings)
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level.upper())
    finally:
        close_context()


def start_scheduler(settings: Settings) -> None:
    """Run the periodic jobs through RQ's cron scheduler. Run exactly one of these."""
    from redis import Redis
    from rq import Queue
    from rq.cron import CronJob, CronScheduler
    from rq.serializers import JSONSerializer

    assert settings.redis_url
    connection = Redis.from_url(settings.redis_url)

    class JsonCronJob(CronJob):
        # RQ's cron enqueues with the default (pickle) serializer; our workers speak JSON.
        def enqueue(self, connection: Redis) -> Any:
            assert self.func is not None
            queue = Queue(self.queue_name, connection=connection, serializer=JSONSerializer)
            return queue.enqueue(self.func, args=self.args, **self.job_options)

    scheduler = CronScheduler(connection=connection, logging_level=settings.log_level.upper())
    for periodic in tasks.PERIODIC:
        cron_job = JsonCronJob(
            queue_name=jobs.QUEUE_NAME,
            func=run_periodic,
            args=(periodic.name,),
            interval=periodic.every(settings),
            name=periodic.name,
            ttl=periodic.every(settings),
        )
        scheduler._cron_jobs.append(cron_job)
        log.info("periodic_job_registered", job=periodic.name, every=periodic.every(settings))
    scheduler.start()  # type: ignore[no-untyped-call]
