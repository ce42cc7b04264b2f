"""Background jobs through a transactional outbox.

``enqueue(session, name, **payload)`` records the job in the caller's transaction and hands
it to the dispatcher only after that transaction commits. Two dispatchers share one job
contract:

* ``InlineDispatcher`` (no ``REDIS_URL``) runs the job as an asyncio task in this process;
* ``RQDispatcher`` puts it on an RQ queue (JSON serializer, ``Retry``) for ``commissary worker``.

A job deletes its outbox row in the transaction that does its work: a second delivery of the
same job finds no row and does nothing, and a row that outlives its dispatch (Redis was down,
a worker died) is re-sent by the ``ops.relay_outbox`` periodic job.

Work whose durable record is a row of its own (a ``pending`` order) needs no outbox row:
``wake(session, name)`` asks, after commit, for one run of a payload-less batch job, and
concurrent wakes coalesce into one queued run (see ``Dispatcher.wake``). A periodic sweep runs
the same job, so a wake lost with Redis only delays the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.db import after_commit, commit, rollback, utcnow
from commissary.core.redis import Batcher, sync_client
from commissary.models import OutboxJob

if TYPE_CHECKING:
    from commissary.core.runtime import Runtime

log = structlog.get_logger(__name__)

JobHandler = Callable[..., Awaitable[None]]
_HANDLERS: dict[str, JobHandler] = {}
_WAKEABLE: set[str] = set()  # payload-less batch jobs that ``wake`` may ask for
_BULK: set[str] = set()  # jobs of BULK_QUEUE_NAME

QUEUE_NAME = "commissary"
# Jobs no order waits for (mail): workers take them only when the first queue is empty, so a
# burst of orders is processed first and its mail follows.
BULK_QUEUE_NAME = "commissary-bulk"
QUEUE_NAMES = (QUEUE_NAME, BULK_QUEUE_NAME)  # the order workers take jobs in
RQ_ENTRY = "commissary.worker.run_job"
RETRY_INTERVALS = [5, 30, 120, 600]


def job(
    name: str, *, wakeable: bool = False, bulk: bool = False
) -> Callable[[JobHandler], JobHandler]:
    """Register an async ``handler(session, **payload)`` under a stable name. A
    ``wakeable`` job takes no payload and is run on demand by ``wake``. A ``bulk`` job goes
    to ``BULK_QUEUE_NAME``."""

    def register(handler: JobHandler) -> JobHandler:
        if name in _HANDLERS and _HANDLERS[name] is not handler:
            raise RuntimeError(f"job {name!r} registered twice")
        _HANDLERS[name] = handler
        if wakeable:
            _WAKEABLE.add(name)
        if bulk:
            _BULK.add(name)
        return handler

    return register


def queue_name(name: str) -> str:
    """The RQ queue job ``name`` goes to."""
    return BULK_QUEUE_NAME if name in _BULK else QUEUE_NAME


def runtime_of(session: AsyncSession) -> Runtime:
    runtime: Runtime = session.info["runtime"]
    return runtime


def enqueue(
    session: AsyncSession, name: str, *, delay: float | None = None, **payload: Any
) -> None:
    """Record job ``name`` in this transaction; dispatch it once the transaction commits.
    ``payload`` must be JSON (ids, not objects). ``delay`` defers it by that many seconds."""
    if name not in _HANDLERS:
        raise LookupError(f"unknown job {name!r}")
    not_before = utcnow() + dt.timedelta(seconds=delay) if delay else None
    row = OutboxJob(name=name, payload=payload, not_before=not_before)
    session.add(row)
    dispatcher = runtime_of(session).jobs

    async def _dispatch() -> None:
        await dispatcher.dispatch(row.id, name, payload, delay)

    after_commit(session, _dispatch)


class _Wakes:
    """The batch jobs one transaction asks for, sent together once it commits."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.names: list[str] = []

    async def __call__(self) -> None:
        await self.dispatcher.wake_all(self.names)


def wake(session: AsyncSession, name: str) -> None:
    """Once this transaction commits, make sure the batch job ``name`` runs soon. The wakes
    of one transaction go out together (one Redis round trip)."""
    if name not in _WAKEABLE:
        raise LookupError(f"no wakeable job {name!r}")
    effects = session.info.get("after_commit", ())
    wakes = next((effect for effect in effects if isinstance(effect, _Wakes)), None)
    if wakes is None:
        wakes = _Wakes(runtime_of(session).jobs)
        after_commit(session, wakes)
    if name not in wakes.names:
        wakes.names.append(name)


async def execute(
    runtime: Runtime, name: str, outbox_id: int | None, payload: dict[str, Any]
) -> None:
    """Run one job in its own transaction. A job whose outbox row is gone already ran."""
    handler = _HANDLERS[name]
    if name in _WAKEABLE:
        # A batch job starting now sees every commit that woke it so far: later wakes queue
        # another run.
        await runtime.jobs.clear_wake(name)
    async with runtime.sessionmaker() as session:
        try:
            if outbox_id is not None:
                claimed = await session.execute(delete(OutboxJob).where(OutboxJob.id == outbox_id))
                if claimed.rowcount == 0:  # type: ignore[attr-defined]
                    log.info("job_already_done", job=name, outbox_id=outbox_id)
                    await rollback(session)
                    return
            await handler(session, **payload)
            await commit(session)
        except BaseException:
            await rollback(session)
            raise


class Dispatcher(Protocol):
    async def dispatch(
        self, outbox_id: int, name: str, payload: dict[str, Any], delay: float | None
    ) -> None: ...

    def is_pending(self, outbox_id: int) -> bool:
        """Whether the job of this outbox row is already queued, scheduled or running."""

    async def wake_all(self, names: list[str]) -> None:
        """Queue one run of each payload-less job of ``names`` unless one is queued already."""

    async def clear_wake(self, name: str) -> None:
        """A run of ``name`` starts: the next wake must queue another run."""

    async def close(self) -> None: ...


class InlineDispatcher:
    """Runs jobs as tasks of this process's event loop, after the commit that asked for them."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._pending: set[int] = set()
        self._woken: dict[str, bool] = {}  # batch job running -> run it again afterwards

    async def dispatch(
        self, outbox_id: int, name: str, payload: dict[str, Any], delay: float | None
    ) -> None:
        self._pending.add(outbox_id)
        if delay:
            loop = asyncio.get_running_loop()
            self._timers[outbox_id] = loop.call_later(delay, self._spawn, outbox_id, name, payload)
        else:
            self._spawn(outbox_id, name, payload)

    def _spawn(self, outbox_id: int | None, name: str, payload: dict[str, Any]) -> None:
        if outbox_id is not None:
            self._timers.pop(outbox_id, None)
        task = asyncio.get_running_loop().create_task(self._run(outbox_id, name, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, outbox_id: int | None, name: str, payload: dict[str, Any]) -> None:
        try:
            await execute(self._runtime, name, outbox_id, payload)
        except Exception:
            # The outbox row survives the failure; the relay retries it later.
            log.exception("job_failed", job=name, outbox_id=outbox_id)
        finally:
            if outbox_id is not None:
                self._pending.discard(outbox_id)

    def is_pending(self, outbox_id: int) -> bool:
        return outbox_id in self._pending

    async def wake_all(self, names: list[str]) -> None:
        for name in names:
            await self.wake(name)

    async def wake(self, name: str) -> None:
        if name in self._woken:
            self._woken[name] = True
            return
        self._woken[name] = False
        task = asyncio.get_running_loop().create_task(self._run_woken(name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def clear_wake(self, name: str) -> None:
        if name in self._woken:
            self._woken[name] = False

    async def _run_woken(self, name: str) -> None:
        try:
            while True:
                try:
                    await execute(self._runtime, name, None, {})
                except Exception:
                    log.exception("job_failed", job=name)
                if not self._woken.get(name):
                    return
        finally:
            self._woken.pop(name, None)

    async def drain(self) -> None:
        """Wait until every job started so far (and the jobs they started) has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def scheduled(self) -> int:
        return len(self._timers)

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await self.drain()


class RQDispatcher:
    """Puts jobs on the RQ queue that ``commissary worker`` consumes."""

    WAKE_PREFIX = "commissary:wake:"
    WAKE_TTL = 10  # a lost run (Redis flushed, worker died) stops blocking wakes this soon

    def __init__(
        self,
        redis_url: str,
        redis: Redis | None = None,
        batcher: Batcher | None = None,
        *,
        wake_delay: float = 0.0,
    ) -> None:
        """``redis`` (async) serves wakes, sent in ``batcher``'s batches when given; a process
        that only enqueues may leave both out. A wake that queues a run waits ``wake_delay``
        seconds first (see :meth:`wake_all`)."""
        from rq import Queue
        from rq.serializers import JSONSerializer

        self._redis = redis
        self._batcher = batcher or (Batcher(redis) if redis is not None else None)
        self.wake_delay = wake_delay
        self._background: set[asyncio.Task[None]] = set()  # wakes on their way
        self._holding: set[str] = set()  # jobs whose run this process is about to queue
        self._closing = asyncio.Event()
        self.connection = sync_client(redis_url)
        self.queues = {
            name: Queue(name, connection=self.connection, serializer=JSONSerializer)
            for name in QUEUE_NAMES
        }
        self.queue = self.queues[QUEUE_NAME]

    async def dispatch(
        self, outbox_id: int, name: str, payload: dict[str, Any], delay: float | None
    ) -> None:
        # RQ speaks the synchronous redis client: keep it off the event loop.
        await asyncio.to_thread(self.send, outbox_id, name, payload, delay)

    def send(
        self, outbox_id: int | None, name: str, payload: dict[str, Any], delay: float | None
    ) -> None:
        from rq import Retry

        options: dict[str, Any] = {
            "retry": Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
            "result_ttl": 600,
            "failure_ttl": 7 * 24 * 3600,
        }
        if outbox_id is not None:
            options["job_id"] = f"outbox-{outbox_id}"
        args = (name, outbox_id, payload)
        queue = self.queues[queue_name(name)]
        if delay:
            queue.enqueue_in(dt.timedelta(seconds=delay), RQ_ENTRY, args=args, **options)
        else:
            queue.enqueue(RQ_ENTRY, args=args, **options)

    async def wake_all(self, names: list[str]) -> None:
        """One ``SET NX`` per job, sent with the process's next batch of Redis commands
        (``redis.Batcher``: concurrent requests share a round trip); only the first wake since
        the job's last run started enqueues (and pays the thread hop of RQ's synchronous
        client).

        With a ``wake_delay`` (the api), the wake goes on in the background and the request
        answers at once: the order is committed, and a wake lost on the way only leaves the
        order to the periodic sweep. The first wake queues the run once the delay is over;
        the wakes meanwhile find the key set and queue nothing, so the orders placed in that
        moment are processed by one run instead of one run each. A run's cost in a worker
        (RQ's bookkeeping, a transaction) is mostly the same for one order as for fifty.
        While this process holds such a run (its delay not over yet), its own wakes of the
        job need no Redis at all: the run is pushed after their commits, so it starts after
        them and sees them."""
        names = [name for name in names if name not in self._holding]
        if not names:
            return
        if self.wake_delay:
            task = asyncio.get_running_loop().create_task(self._wake(names))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            await self._wake(names)

    async def _wake(self, names: list[str]) -> None:
        assert self._batcher is not None, "wakes need the async Redis client"
        try:
            firsts = await self._batcher.call_many(
                [("SET", self._wake_key(name), 1, "NX", "EX", self.WAKE_TTL) for name in names],
                first_only=True,
            )
            due = [name for name, first in zip(names, firsts, strict=True) if first]
            if due:
                await self._send_later(due)
        except RedisError as exc:
            log.warning("job_wake_failed", jobs=names, error=str(exc))

    async def _send_later(self, names: list[str]) -> None:
        """Queue the runs of ``names`` after the wake delay; at once when the process stops
        (``close``). A run that cannot be queued is left to the periodic runs of the same
        jobs, as the wake key expires after ``WAKE_TTL``."""
        if self.wake_delay:
            # Held until the run is pushed: a run can start as soon as it is, and a wake
            # made after that must reach Redis (see ``wake_all``).
            self._holding.update(names)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.wake_delay)
            finally:
                self._holding.difference_update(names)
        await asyncio.to_thread(self._send_wakes, names)

    async def wake(self, name: str) -> None:
        await self.wake_all([name])

    def _wake_key(self, name: str) -> str:
        return self.WAKE_PREFIX + name

    def _send_wakes(self, names: list[str]) -> None:
        for name in names:
            self.send(None, name, {}, None)

    async def clear_wake(self, name: str) -> None:
        if self._redis is None:
            return
        try:
            await self._redis.delete(self.WAKE_PREFIX + name)
        except RedisError as exc:
            log.warning("job_wake_clear_failed", job=name, error=str(exc))

    def is_pending(self, outbox_id: int) -> bool:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        try:
            job = Job.fetch(
                f"outbox-{outbox_id}", connection=self.connection, serializer=self.queue.serializer
            )
        except NoSuchJobError:
            return False
        return job.get_status() in {
            JobStatus.QUEUED,
            JobStatus.STARTED,
            JobStatus.SCHEDULED,
            JobStatus.DEFERRED,
        }

    async def close(self) -> None:
        # A wake still waiting out its delay is sent now; every wake on its way finishes.
        self._closing.set()
        await asyncio.gather(*self._background, return_exceptions=True)
        self.connection.close()
