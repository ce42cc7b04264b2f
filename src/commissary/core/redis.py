"""Redis clients and what a process does while Redis is away.

The API's clients fail fast: a refused or dropped connection is retried once (a pooled
connection left stale by a Redis restart fails on first use, the retry opens a fresh one),
a slow or hung Redis is never retried (each retry would add another full timeout), and
every wait is bounded. Callers treat a Redis error as "Redis is down" and fall back or
answer for themselves; :class:`Outage` logs such a period once when it starts and once when
it ends, however many calls fail in between."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

log = structlog.get_logger(__name__)

#: What "Redis is away" looks like to a caller.
UNAVAILABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)

_OPTIONS: dict[str, Any] = {
    "socket_timeout": 2,
    "socket_connect_timeout": 1,
    "health_check_interval": 30,
}


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=0.5, base=0.05)


def async_client(url: str) -> Redis:
    """The API's client (rate limits, readiness, caches)."""
    retry = AsyncRetry(_backoff(), retries=1, supported_errors=(RedisConnectionError,))
    return Redis.from_url(url, retry=retry, **_OPTIONS)


def cache_client(url: str) -> Redis:
    """For the answer cache, which falls back to the database: fail within a fraction of a
    second instead of retrying with backoff, so a Redis outage does not slow reads down. One
    immediate retry replaces a pooled connection that went stale in a Redis restart."""
    options = {**_OPTIONS, "socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    return Redis.from_url(url, retry=AsyncRetry(NoBackoff(), retries=1), **options)


def sync_client(url: str) -> SyncRedis:
    """For RQ, which speaks the synchronous client (used off the event loop). An RQ worker
    raises this client's socket timeout above its blocking dequeue wait by itself."""
    retry = Retry(_backoff(), retries=1, supported_errors=(RedisConnectionError,))
    return SyncRedis.from_url(url, retry=retry, **_OPTIONS)


class Outage:
    """Tracks whether ``component`` can reach Redis; logs each change of that state once.
    Safe to share between threads."""

    def __init__(self, component: str, **context: str) -> None:
        self.component = component
        self._context = context
        self._since: float | None = None
        self.count = 0  # outages so far
        self._lock = threading.Lock()

    @property
    def is_down(self) -> bool:
        return self._since is not None

    def down(self, error: object) -> bool:
        """Redis failed a call; True if this starts an outage (and was logged)."""
        with self._lock:
            if self._since is not None:
                return False
            self._since = time.monotonic()
            self.count += 1
        log.warning(
            "redis_unavailable", component=self.component, error=str(error), **self._context
        )
        return True

    def up(self) -> bool:
        """Redis answered; True if this ends an outage (and was logged)."""
        if self._since is None:  # the common case: no lock taken
            return False
        with self._lock:
            if self._since is None:
                return False
            seconds, self._since = time.monotonic() - self._since, None
        log.info("redis_available", component=self.component, down_for=round(seconds, 1))
        return True


class Batcher:
    """Sends the commands of concurrent callers together: while one round trip is on its
    way, the commands issued meanwhile wait and go out in the next one, as one pipeline.

    Under load every order placement makes a rate-limit count and a job wake-up; one round
    trip each cost more CPU than any other part of the placement but the database's. Batched,
    a busy process makes about one round trip per batch instead of one per request; an idle
    one sends each command at once, as before. Each caller gets its own command's answer or
    error (a connection error fails the whole batch, and each caller sees it)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._waiting: list[_Entry] = []
        self._firsts: dict[tuple[Any, ...], _Entry] = {}  # first_only commands of _waiting
        self._sender: asyncio.Task[None] | None = None

    async def call(self, *command: Any) -> Any:
        """Send ``command`` (e.g. ``"SET", key, 1, "NX"``) in the next batch; its answer."""
        (answer,) = await self.call_many([command])
        return answer

    async def call_many(
        self, commands: list[tuple[Any, ...]], *, first_only: bool = False
    ) -> list[Any]:
        """Send ``commands`` in the same batch; their answers, in order.

        ``first_only``: commands of which only the first of a batch can succeed (``SET …
        NX``). One already waiting in the batch is not sent again: the repeat is answered
        None, as Redis would answer it, once the first is answered (or its error)."""
        loop = asyncio.get_running_loop()
        futures = []
        for command in commands:
            future: asyncio.Future[Any] = loop.create_future()
            futures.append(future)
            first = self._firsts.get(command) if first_only else None
            if first is not None:
                first.repeats.append(future)
                continue
            entry = _Entry(command, future, [])
            self._waiting.append(entry)
            if first_only:
                self._firsts[command] = entry
        if self._sender is None:
            self._sender = loop.create_task(self._send())
        return [await future for future in futures]

    async def _send(self) -> None:
        batch: list[_Entry] = []
        try:
            while self._waiting:
                batch, self._waiting, self._firsts = self._waiting, [], {}
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for entry in batch:
                            pipe.execute_command(*entry.command)
                        answers = await pipe.execute(raise_on_error=False)
                except Exception as exc:  # each caller gets the error
                    answers = [exc] * len(batch)
                for entry, answer in zip(batch, answers, strict=True):
                    entry.answer(answer)
        finally:
            self._sender = None
            for entry in batch + self._waiting:  # cancelled while sending: callers too
                entry.cancel()
            self._waiting, self._firsts = [], {}

    async def close(self) -> None:
        """Let the batch on its way finish (its callers are waiting for it)."""
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)


@dataclass(slots=True)
class _Entry:
    """A command of a batch, its caller's future, and the futures of its repeats."""

    command: tuple[Any, ...]
    future: asyncio.Future[Any]
    repeats: list[asyncio.Future[Any]]

    def answer(self, answer: Any) -> None:
        for future, value in [(self.future, answer), *((r, None) for r in self.repeats)]:
            if future.done():  # its caller was cancelled
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(value)

    def cancel(self) -> None:
        for future in (self.future, *self.repeats):
            if not future.done():
                future.cancel()
