"""The RQ side: the job entry point a worker calls, the worker, and the periodic scheduler.

Workers are RQ ``SimpleWorker``s: jobs run in the worker process on one long-lived event
loop and connection pool, instead of forking a process (and a new pool) per job. Run more
worker processes to scale out.

Both long-running commands outlive any Redis outage: RQ's work loop ends on an error it
does not expect (a refused connection in its suspension check, its bookkeeping after a
job), so ``commissary worker`` supervises it, waits until Redis answers again and starts a
fresh worker; ``commissary scheduler`` keeps its timetable in process and enqueues what
fell due once Redis is back. Each outage is logged once when it starts and once when it
ends (see :class:`commissary.core.redis.Outage`)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import threading
import time
import uuid
from types import FrameType
from typing import Any

import structlog
from rq import SimpleWorker

from commissary import tasks
from commissary.config import Settings
from commissary.core import jobs
from commissary.core.db import utcnow
from commissary.core.redis import UNAVAILABLE, Outage, sync_client
from commissary.core.runtime import Runtime, freeze_startup_heap

log = structlog.get_logger(__name__)

_local = threading.local()
_preset: tuple[Settings] | None = None

#: Longest wait between two attempts to reach Redis again, in seconds.
MAX_BACKOFF = 5.0
#: A periodic run still queued or running after this long no longer holds back the next.
STALE_RUN = dt.timedelta(minutes=10)


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
        freeze_startup_heap()
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


class Worker(SimpleWorker):
    """RQ's worker, reporting Redis outages to an :class:`Outage` instead of a log line per
    retry, and re-registering itself when Redis comes back empty after a restart."""

    # RQ doubles its reconnect wait up to a minute; a worker idle that long after Redis
    # is back would leave the queue waiting for nothing.
    max_connection_wait_time = MAX_BACKOFF
    outage: Outage | None = None
    stop_asked = False
    _outages_seen = 0

    def watch(self, outage: Outage) -> None:
        self.outage, self._outages_seen = outage, outage.count

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_asked = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)
        if pipeline is None and self.outage is not None:
            self.outage.up()
            if self.outage.count != self._outages_seen:
                from rq import worker_registration

                # A restarted Redis has forgotten this worker: tell it again, as at birth.
                self.connection.hset(self.key, mapping=self.serialize())
                worker_registration.register(self)
                self._outages_seen = self.outage.count


class _QuietRedisErrors(logging.Filter):
    """Turns RQ's log lines about an unreachable Redis (one per retry, with a traceback
    when its work loop gives up) into outage state changes."""

    def __init__(self, outage: Outage) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        message = str(record.msg)
        if isinstance(error, UNAVAILABLE) or "connect to Redis" in message:
            self.outage.down(error or record.getMessage())
            return False
        return "Redis connection timeout" not in message


def make_worker(settings: Settings, *, name: str | None = None, worker_class: Any = None) -> Any:
    from rq import Queue
    from rq.serializers import JSONSerializer

    assert settings.redis_url
    connection = sync_client(settings.redis_url)
    # In priority order: a worker takes a bulk job (mail) only when no order work waits.
    queues = [Queue(n, connection=connection, serializer=JSONSerializer) for n in jobs.QUEUE_NAMES]
    cls = worker_class or Worker
    return cls(queues, connection=connection, serializer=JSONSerializer, name=name)


class _Stop:
    """SIGTERM / SIGINT between two runs of RQ's loop, which installs its own handlers."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()


def _wait_for_redis(settings: Settings, outage: Outage, stop: _Stop) -> None:
    """Return once Redis answers PING (or a stop was asked), trying with backoff."""
    assert settings.redis_url
    client = sync_client(settings.redis_url)
    delay = 0.5
    try:
        while not stop.event.is_set():
            try:
                client.ping()
            except UNAVAILABLE as exc:
                outage.down(exc)
                stop.event.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF)
            else:
                outage.up()
                return
    finally:
        client.close()


def _supervise(settings: Settings, outage: Outage, stop: _Stop) -> None:
    """Run RQ's work loop; whenever it ends without being asked to, start it again once
    Redis answers. Each run is a fresh worker: the last one may have died unregistered."""
    while not stop.event.is_set():
        worker: Worker | None = None
        try:
            worker = make_worker(settings)
            worker.watch(outage)
            worker.work(with_scheduler=False, logging_level=settings.log_level.upper())
        except UNAVAILABLE as exc:
            outage.down(exc)
        except Exception:
            log.exception("worker_loop_failed")
        finally:
            if worker is not None and worker.pubsub_thread is not None:
                worker.pubsub_thread.stop()  # it retries forever otherwise
        if worker is not None and worker.stop_asked:
            return
        stop.install()
        if not outage.is_down:
            log.error("worker_loop_ended_restarting")
            stop.event.wait(1.0)  # an error that is not Redis's must not spin
        _wait_for_redis(settings, outage, stop)


class ScheduledJobMover(threading.Thread):
    """RQ's scheduler loop (moves delayed jobs and retries to the queue once due), run in a
    thread of the worker.

    RQ's ``with_scheduler`` forks it as a child process, and a worker killed with SIGKILL
    left that child running as an orphan holding the scheduler lock; a thread cannot
    outlive its process. RQ's lock is unchanged: one worker at a time moves jobs, the
    others stand by and take over once its lock expires. Redis errors end one pass, never
    the loop."""

    def __init__(self, settings: Settings, outage: Outage) -> None:
        super().__init__(name="rq-scheduler", daemon=True)
        from rq.scheduler import RQScheduler
        from rq.serializers import JSONSerializer

        assert settings.redis_url
        self.stopping = threading.Event()
        self._outage = outage
        self._scheduler = RQScheduler(
            list(jobs.QUEUE_NAMES),
            connection=sync_client(settings.redis_url),
            serializer=JSONSerializer,
            logging_level=settings.log_level.upper(),
        )

    def run(self) -> None:
        scheduler, born = self._scheduler, False
        while not self.stopping.is_set():
            try:
                if not born:
                    scheduler.register_birth()
                    born = True
                # RQ's standby schedulers try for the lock every two minutes; a try each
                # pass takes over from a killed worker as soon as its lock expires.
                if not scheduler.acquired_locks:
                    scheduler.acquire_locks()  # type: ignore[no-untyped-call]
                scheduler.heartbeat()  # type: ignore[no-untyped-call]
                scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
                self._outage.up()
            except UNAVAILABLE as exc:
                self._outage.down(exc)
            except Exception:
                log.exception("scheduled_job_mover_failed")
            self.stopping.wait(scheduler.interval)
        with contextlib.suppress(*UNAVAILABLE):  # the lock expires by itself
            scheduler.stop()  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def yield_cpu(settings: Settings) -> None:
    """Take the niceness ``WORKER_NICE`` (never a lower one than inherited): where workers
    share cores with the api, the scheduler gives the requests the CPU first and the jobs
    what is left, which only makes their batches larger. On a host of their own it changes
    nothing."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if settings.worker_nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, settings.worker_nice)


def start_worker(settings: Settings, *, burst: bool = False) -> None:
    yield_cpu(settings)
    tasks.load()
    # The event loop, pools and imports are ready before RQ takes the first job, which
    # would otherwise wait for them (seconds, on a busy machine).
    _context()
    outage = Outage("worker")
    logging.getLogger("rq.worker").addFilter(_QuietRedisErrors(outage))
    try:
        if burst:
            # In burst mode RQ moves the due jobs once, in this process, before working.
            make_worker(settings).work(
                burst=True, with_scheduler=True, logging_level=settings.log_level.upper()
            )
            return
        mover = ScheduledJobMover(settings, outage)
        mover.start()
        try:
            _supervise(settings, outage, _Stop())
        finally:
            mover.stop()
    finally:
        close_context()


def start_scheduler(settings: Settings) -> None:
    """Enqueue each periodic job of :data:`commissary.tasks.PERIODIC` on its interval. Run
    exactly one.

    The timetable lives here rather than in RQ's cron: RQ's ``CronJob`` enqueues with the
    pickle serializer and offers no way to choose another, while our workers read JSON.
    A run is not enqueued again while the previous one is still queued or running, and a
    run missed while Redis was away is enqueued as soon as it is back."""
    assert settings.redis_url
    yield_cpu(settings)
    tasks.load()
    outage, stop = Outage("scheduler"), _Stop()
    stop.install()
    dispatcher = jobs.RQDispatcher(settings.redis_url)
    due = dict.fromkeys((p.name for p in tasks.PERIODIC), 0.0)
    last: dict[str, str] = {}
    for periodic in tasks.PERIODIC:
        log.info("periodic_job_registered", job=periodic.name, every=periodic.every(settings))
    while not stop.event.is_set():
        for periodic in tasks.PERIODIC:
            if time.monotonic() < due[periodic.name]:
                continue
            try:
                _enqueue_periodic(dispatcher, periodic.name, last)
            except UNAVAILABLE as exc:
                outage.down(exc)
                break
            outage.up()
            due[periodic.name] = time.monotonic() + periodic.every(settings)
        stop.event.wait(min(1.0, max(0.05, min(due.values()) - time.monotonic())))
    dispatcher.connection.close()


def _enqueue_periodic(dispatcher: jobs.RQDispatcher, name: str, last: dict[str, str]) -> None:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    if name in last:
        try:
            previous = Job.fetch(
                last[name], connection=dispatcher.connection, serializer=dispatcher.queue.serializer
            )
        except NoSuchJobError:
            pass
        else:
            # A run "started" long ago belonged to a worker that died; RQ notices that late.
            recent = previous.enqueued_at and utcnow() - previous.enqueued_at < STALE_RUN
            if recent and previous.get_status() in {JobStatus.QUEUED, JobStatus.STARTED}:
                return
    job_id = f"periodic-{name.replace('.', '_')}-{uuid.uuid4().hex[:12]}"
    dispatcher.queues[jobs.queue_name(name)].enqueue(
        jobs.RQ_ENTRY, args=(name, None, {}), job_id=job_id, result_ttl=600, failure_ttl=86400
    )
    last[name] = job_id
