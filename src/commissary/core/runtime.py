"""The process-wide services one API process or worker holds: settings, signing key,
password hasher, database, Redis, job dispatcher, mailer, rate limiter, the menu cache and the
realtime hub with its WebSocket tickets.
Sessions carry it in ``session.info["runtime"]``."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from commissary.config import Settings
from commissary.core.cache import AnswerCache, create_cache
from commissary.core.db import (
    create_engine,
    create_sessionmaker,
    create_statement_sessionmaker,
)
from commissary.core.mail import Mailer
from commissary.core.ratelimit import FallbackRateLimiter, MemoryRateLimiter, RateLimiter
from commissary.core.realtime import Hub, Tickets
from commissary.core.redis import Batcher, async_client
from commissary.core.security import Passwords, signing_key

if TYPE_CHECKING:
    from commissary.core.jobs import Dispatcher


_heap_frozen = False


def freeze_startup_heap() -> None:
    """Put what start-up allocated (modules, models, routes, the runtime) out of the cyclic
    garbage collector's reach, once per process.

    Those objects live as long as the process, yet every full collection walked them all: on
    the order placement path that was about a tenth of the CPU. Objects made later are
    collected as usual."""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()


@dataclass(eq=False)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)
    statement_sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)
    redis: Redis | None
    jobs: Dispatcher = field(init=False)
    mailer: Mailer
    limiter: RateLimiter
    cache: AnswerCache
    secret: str
    passwords: Passwords
    realtime: Hub
    tickets: Tickets
    # Batches the Redis commands of concurrent requests (rate limits, job wake-ups).
    batcher: Batcher | None = None

    @classmethod
    def create(cls, settings: Settings, *, wake_delay: float = 0.0) -> Runtime:
        """``wake_delay``: how long the wake-ups of batch jobs wait before they are queued
        (``RQDispatcher``); only for a process whose event loop keeps running (the api), as
        a worker's loop runs only during its jobs."""
        from commissary.core.jobs import InlineDispatcher, RQDispatcher

        secret = signing_key(settings)
        redis = async_client(settings.redis_url) if settings.redis_url else None
        batcher = Batcher(redis) if redis else None
        runtime = cls(
            settings=settings,
            engine=create_engine(settings),
            redis=redis,
            mailer=Mailer(settings),
            limiter=FallbackRateLimiter(redis, batcher) if redis else MemoryRateLimiter(),
            cache=create_cache(settings),
            secret=secret,
            passwords=Passwords(settings),
            realtime=Hub(redis, queue_size=settings.realtime_send_queue),
            tickets=Tickets(redis, settings.ws_ticket_ttl),
            batcher=batcher,
        )
        runtime.sessionmaker = create_sessionmaker(runtime.engine, {"runtime": runtime})
        runtime.statement_sessionmaker = create_statement_sessionmaker(
            runtime.engine, {"runtime": runtime}
        )
        runtime.jobs = (
            RQDispatcher(settings.redis_url, redis, batcher, wake_delay=wake_delay)
            if settings.redis_url and redis is not None
            else InlineDispatcher(runtime)
        )
        return runtime

    async def close(self) -> None:
        await self.realtime.close()
        if self.batcher is not None:
            await self.batcher.close()
        await self.jobs.close()
        await self.cache.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
        self.passwords.close()
