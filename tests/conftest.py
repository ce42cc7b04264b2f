"""The test session starts real servers: PostgreSQL, Redis and SMTP on loopback. Every API
test runs twice: on PostgreSQL + Redis + an RQ worker, and on the embedded default (SQLite,
jobs in process)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import settings
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import func, select, text

from commissary import worker
from commissary.config import Settings
from commissary.core import migrate
from commissary.core.db import Base, commit
from commissary.core.jobs import InlineDispatcher, RQDispatcher
from commissary.core.ratelimit import FallbackRateLimiter, MemoryRateLimiter
from commissary.core.runtime import Runtime
from commissary.main import create_app
from commissary.models import Order, OrderStatus, Role, User
from commissary.users import service as user_service
from commissary.users.auth_service import access_token
from commissary.users.schemas import UserCreate
from tests import servers

PASSWORD = "correct-horse-9"

# CI explores the same examples on every run, so a red build is reproducible; developers'
# runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with servers.postgres() as url:
        yield url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers.RedisServer]:
    with servers.redis() as server:
        yield server


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[int, servers.Mailbox]]:
    with servers.smtp() as server:
        yield server


def make_settings(
    database_url: str, redis_url: str | None, smtp_port: int, **extra: Any
) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "redis_url": redis_url,
        "secret_key": secrets.token_urlsafe(48),
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_starttls": False,
        "log_format": "console",
        "log_level": "WARNING",
        # argon2 at its lowest cost: the suite hashes hundreds of passwords.
        "password_hash_time_cost": 1,
        "password_hash_memory_cost": 1024,
        # The simulated kitchen cooks in 1-5 s by default; tests wait a fraction of that.
        "kitchen_min_seconds": 0.05,
        "kitchen_max_seconds": 0.2,
        # Tests run the queued jobs themselves, right after the requests that queued them;
        # test_wake_delay.py covers the delay.
        "job_wake_delay": 0,
        **extra,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def another_api(
    backend: Backend, smtp_port: int, **extra: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A second API on the backend's PostgreSQL and Redis, with settings ``extra`` of its
    own, started and served in process; its tokens are the backend's."""
    settings = make_settings(
        backend.settings.database_url,
        backend.settings.redis_url,
        smtp_port,
        secret_key=backend.runtime.secret,
        **extra,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield app, http


class ThreadWorker(SimpleWorker):  # type: ignore[misc]
    """A real RQ worker that can run off the main thread (signals only work on the main one),
    so the test's event loop keeps serving while it works."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


@dataclass
class Backend:
    """One way of running Commissary, with what a test needs to drive it."""

    name: str
    settings: Settings
    app: FastAPI
    runtime: Runtime
    redis: servers.RedisServer | None
    _executor: ThreadPoolExecutor | None = None

    async def run_jobs(self) -> None:
        """Run every queued job to completion: a burst RQ worker, or the in-process tasks."""
        if isinstance(self.runtime.jobs, InlineDispatcher):
            await self.runtime.jobs.drain()
            return
        assert self._executor is not None
        rq_worker = worker.make_worker(self.settings, worker_class=ThreadWorker)
        await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: rq_worker.work(burst=True, with_scheduler=True)
        )

    async def settle(self, timeout: float = 15.0) -> None:
        """Run jobs, including delayed ones once they are due, and the periodic order sweep
        (as the scheduler would), until no job is left and no order waits for a worker."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            await self.run_jobs()
            await self.run_job("orders.sweep")
            await self.run_jobs()  # what the sweep's commits woke (the event sequencer)
            if not self._jobs_left() and not await self._orders_waiting():
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("jobs still queued or scheduled")
            await asyncio.sleep(0.05)

    async def _orders_waiting(self) -> int:
        """Orders still pending, or cooking in the simulated kitchen."""
        async with self.runtime.sessionmaker() as session:
            waiting = await session.scalar(
                select(func.count())
                .select_from(Order)
                .where(
                    (Order.status == OrderStatus.PENDING)
                    | (
                        (Order.status == OrderStatus.IN_PROGRESS)
                        & Order.kitchen_due_at.is_not(None)
                    )
                )
            )
        return int(waiting or 0)

    def _jobs_left(self) -> int:
        dispatcher = self.runtime.jobs
        if isinstance(dispatcher, InlineDispatcher):
            return dispatcher.scheduled
        assert isinstance(dispatcher, RQDispatcher)
        return sum(
            int(queue.count + ScheduledJobRegistry(queue=queue).count)
            for queue in dispatcher.queues.values()
        )

    async def run_job(self, name: str, **payload: Any) -> None:
        """Run one job directly, as the worker would."""
        from commissary.core.jobs import execute

        await execute(self.runtime, name, None, payload)


async def _truncate(runtime: Runtime) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with runtime.engine.begin() as conn:
        if runtime.settings.is_sqlite:
            for table in tables:
                await conn.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608 - our own names
            # Ids restart, as PostgreSQL's RESTART IDENTITY does.
            await conn.execute(text("DELETE FROM sqlite_sequence"))
        else:
            quoted = ", ".join(f'"{t}"' for t in tables)
            await conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
async def backend(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: tuple[int, servers.Mailbox],
) -> AsyncIterator[Backend]:
    redis: servers.RedisServer | None = None
    if request.param == "postgres":
        database_url = request.getfixturevalue("pg_url")
        redis = request.getfixturevalue("redis_server")
    else:
        path: Path = tmp_path_factory.mktemp("sqlite") / "commissary.db"
        database_url = f"sqlite+aiosqlite:///{path}"
    media = tmp_path_factory.mktemp("media")
    settings = make_settings(database_url, redis.url if redis else None, smtp[0], media_dir=media)
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    app = create_app(settings)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rq-worker") if redis else None
    worker.use_settings(settings)
    async with app.router.lifespan_context(app):
        yield Backend(request.param, settings, app, app.state.runtime, redis, executor)
    if executor is not None:
        await asyncio.get_running_loop().run_in_executor(executor, worker.close_context)
        executor.shutdown()
    worker.use_settings(None)


@pytest.fixture(autouse=True)
async def _clean(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "backend" not in request.fixturenames:
        return
    backend: Backend = request.getfixturevalue("backend")
    if isinstance(backend.runtime.jobs, InlineDispatcher):
        await backend.runtime.jobs.close()
    await _truncate(backend.runtime)
    if backend.redis is not None:
        if backend.redis.process is None:  # a test stopped it
            backend.redis.start()
        assert backend.runtime.redis is not None
        await backend.runtime.redis.flushdb()
        # Counts made in process while a test kept Redis away must not reach the next test.
        backend.runtime.limiter = FallbackRateLimiter(
            backend.runtime.redis, backend.runtime.batcher
        )
    else:
        backend.runtime.limiter = MemoryRateLimiter()
    await backend.runtime.cache.invalidate()  # the ids of the truncated rows come back


@pytest.fixture
def mailbox(smtp: tuple[int, servers.Mailbox]) -> Iterator[servers.Mailbox]:
    smtp[1].messages.clear()
    yield smtp[1]
    smtp[1].messages.clear()
    smtp[1].refuse = 0


@pytest.fixture
async def client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=backend.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class Account:
    user: User
    password: str
    headers: dict[str, str]


MakeUser = Callable[..., Awaitable[Account]]


@pytest.fixture
def make_user(backend: Backend) -> MakeUser:
    """Create an account through the users service and give it a valid access token."""
    counter = iter(range(1, 10_000))

    async def make(
        role: Role = Role.CUSTOMER,
        *,
        verified: bool = True,
        email: str | None = None,
        **fields: Any,
    ) -> Account:
        n = next(counter)
        data = UserCreate(
            email=email or f"{role.value}{n}@example.com",
            password=PASSWORD,
            full_name=fields.pop("full_name", f"{role.value.title()} {n}"),
            role=role,
            **fields,
        )
        async with backend.runtime.sessionmaker() as session:
            user = await user_service.create_user(session, data, actor_id=None, verified=verified)
            await commit(session)
        token = access_token(backend.runtime, user, ttl=600)
        return Account(user, PASSWORD, {"Authorization": f"Bearer {token}"})

    return make


def code_in(message: Any) -> str:
    """The 6-digit verification code of a received mail."""
    body = message.get_payload(decode=True).decode()
    match = re.search(r"verification code is (\d{6})", body)
    assert match, body
    return match.group(1)
