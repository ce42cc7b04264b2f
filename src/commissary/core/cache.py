"""A read-through cache of public answers (the menu): the JSON bytes of an answer, stored by
key and served as they are. In Redis when ``REDIS_URL`` is set (shared by every replica), else
in process (a bounded LRU).

Invalidation is by *generation*, not by key. Every answer is stored under the current menu
generation; a write that changes what the menu shows calls :func:`invalidate_menu`, which
moves to a new generation once the write's transaction has committed (and not at all if it
rolls back). Old generations are never read again and expire with their TTL. The invariant:

    An answer stored under generation ``g`` was computed by a database read that started
    after every write whose invalidation produced a generation ``<= g`` had committed.

It holds because a reader learns ``g`` (in the same round trip as its lookup) before it opens
its database transaction, and a writer advances the generation only after its commit. So once
a write's invalidation has returned - which happens before its response is sent - every later
lookup sees a newer generation, and a reader that computed its answer from older data can
only store it under an older generation, which nobody looks up any more. A write's own client
therefore never reads a stale answer after it.

Redis away: a lookup gives up within a second and the answer comes from the database
(logged once per outage, never a 500); meanwhile only one lookup at a time tries Redis and the
others go straight to the database, so a Redis that hangs does not slow every read. Writes
still commit, but their invalidation cannot reach Redis, and the answers cached before them
would come back with it. So the process owes an advance of the generation: its next lookup
that reaches Redis advances it before reading (in the same round trip), and a background task
retries every second so that other replicas stop serving those answers too. A lookup or store
that found Redis unreachable owes one as well (Redis may come back from an older snapshot). A
Redis that comes back empty starts a new generation from the clock in microseconds, above any
generation used before, so an answer computed before the outage and stored after it is never
read. What remains: another replica may serve answers older than a write made during the
outage for up to a second after Redis returns (or until ``CACHE_TTL`` if Redis stays
unreachable from the writer's process only).

The in-process cache keeps its generation in memory. On a SQLite file, a process that changes
the menu (the command line next to ``serve``) also appends a byte to ``<database>-menu``;
each lookup compares that file's size with the last one seen and drops everything on a change.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.config import Settings
from commissary.core.db import after_commit
from commissary.core.jobs import runtime_of
from commissary.core.redis import cache_client

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Lookup:
    body: bytes | None  # the stored answer, on a hit
    generation: int | None  # under which a fresh answer may be stored; None: do not store


NO_CACHE = Lookup(None, None)


class AnswerCache(Protocol):
    async def lookup(self, key: str) -> Lookup: ...

    async def store(self, key: str, generation: int, body: bytes, ttl: float) -> None: ...

    async def invalidate(self) -> None:
        """Move to a new generation: every answer stored so far is dropped."""

    async def close(self) -> None: ...


class DisabledCache:
    """``CACHE_ENABLED=false``: every answer comes from the database."""

    async def lookup(self, key: str) -> Lookup:
        return NO_CACHE

    async def store(self, key: str, generation: int, body: bytes, ttl: float) -> None:
        return None

    async def invalidate(self) -> None:
        return None

    async def close(self) -> None:
        return None


class MemoryCache:
    """An LRU of answers with a TTL, bounded by the total size of the stored bodies."""

    def __init__(self, max_bytes: int, signal: Path | None = None) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._size = 0
        self._max_bytes = max_bytes
        self._generation = 0
        self._signal = signal
        self._seen = self._stamp()

    async def lookup(self, key: str) -> Lookup:
        if self._signal is not None:
            self._follow_other_processes()
        entry = self._entries.get(key)
        if entry is not None:
            if entry[0] > time.monotonic():
                self._entries.move_to_end(key)
                return Lookup(entry[1], self._generation)
            self._remove(key)
        return Lookup(None, self._generation)

    async def store(self, key: str, generation: int, body: bytes, ttl: float) -> None:
        if generation != self._generation or len(body) > self._max_bytes:
            return  # the menu changed since the lookup: the answer may predate the change
        self._remove(key)
        self._entries[key] = (time.monotonic() + ttl, body)
        self._size += len(body)
        while self._size > self._max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._size -= len(evicted)

    async def invalidate(self) -> None:
        if self._signal is not None:
            try:
                with self._signal.open("ab") as signal:  # O_APPEND: atomic across processes
                    signal.write(b".")
            except OSError as exc:
                log.warning("menu_cache_signal_failed", path=str(self._signal), error=str(exc))
        self._drop_all()
        self._seen = self._stamp()

    async def close(self) -> None:
        self._drop_all()

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._size -= len(entry[1])

    def _drop_all(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._size = 0

    def _stamp(self) -> tuple[int, int] | None:
        """The signal file's identity and size: it only grows, so any change is a write."""
        if self._signal is None:
            return None
        try:
            stat = os.stat(self._signal)
        except OSError:
            return None
        return stat.st_ino, stat.st_size

    def _follow_other_processes(self) -> None:
        stamp = self._stamp()
        if stamp != self._seen:
            self._seen = stamp
            self._drop_all()


# One round trip: read the generation and the answer stored under it, or first advance the
# generation (ARGV[3] == "1"). A missing generation starts at ARGV[4], the clock in
# microseconds. Single-node Redis: the answer's key is derived inside the script.
_LOOKUP = """
local gen = redis.call('GET', KEYS[1])
if not gen then
  redis.call('SET', KEYS[1], ARGV[4])
  return {ARGV[4], false}
end
if ARGV[3] == '1' then
  return {redis.call('INCR', KEYS[1]), false}
end
return {gen, redis.call('GET', ARGV[1] .. gen .. ':' .. ARGV[2])}
"""


class RedisCache:
    """Answers in Redis under ``commissary:menu:<generation>:<key>``; see the module's
    docstring for the invariant and what happens while Redis is away."""

    PREFIX = "commissary:menu:"
    GENERATION = PREFIX + "gen"
    RETRY_SECONDS = 1.0

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_LOOKUP)
        self._owed = 0  # failures that may have left answers older than the database
        self._settled = 0  # the value of _owed that the last advance of the generation covers
        self._down = False
        self._probing = False
        self._retry: asyncio.Task[None] | None = None

    async def lookup(self, key: str) -> Lookup:
        if self._down and self._probing:
            return NO_CACHE  # one request at a time finds out whether Redis is back
        probing = self._probing = self._down
        owed = self._owed
        advance = owed != self._settled
        try:
            gen, body = await self._script(
                keys=[self.GENERATION], args=[self.PREFIX, key, int(advance), _clock_generation()]
            )
        except RedisError as exc:
            self._failed(exc)
            return NO_CACHE
        finally:
            if probing:
                self._probing = False
        self._reachable(owed if advance else None)
        return Lookup(body, int(gen))

    async def store(self, key: str, generation: int, body: bytes, ttl: float) -> None:
        if self._down:
            return
        try:
            await self._redis.set(f"{self.PREFIX}{generation}:{key}", body, px=_millis(ttl))
        except RedisError as exc:
            self._failed(exc)

    async def invalidate(self) -> None:
        # While Redis is away the write does not wait for it: the debt is settled by this
        # process's next lookup or by the retry task, whichever reaches Redis first.
        if self._down or not await self._advance():
            self._owed += 1
            if self._retry is None or self._retry.done():
                self._retry = asyncio.create_task(self._advance_until_settled())

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        await self._redis.aclose()

    async def _advance(self) -> bool:
        owed = self._owed
        try:
            await self._script(
                keys=[self.GENERATION], args=[self.PREFIX, "", 1, _clock_generation()]
            )
        except RedisError as exc:
            self._failed(exc)
            return False
        self._reachable(owed)
        return True

    async def _advance_until_settled(self) -> None:
        while self._owed != self._settled:
            await asyncio.sleep(self.RETRY_SECONDS)
            await self._advance()

    def _failed(self, exc: RedisError) -> None:
        if not isinstance(exc, RedisTimeoutError):
            self._owed += 1  # unreachable: it may come back from an older snapshot
        if not self._down:
            self._down = True
            log.warning("menu_cache_unreachable", error=str(exc) or type(exc).__name__)

    def _reachable(self, settled: int | None) -> None:
        if settled is not None:
            self._settled = max(self._settled, settled)
        if self._down:
            self._down = False
            log.info("menu_cache_reachable")


def _clock_generation() -> int:
    return time.time_ns() // 1000


def _millis(ttl: float) -> int:
    return max(1, int(ttl * 1000))


def create_cache(settings: Settings) -> AnswerCache:
    if not settings.cache_enabled:
        return DisabledCache()
    if settings.redis_url:
        return RedisCache(cache_client(settings.redis_url))
    return MemoryCache(settings.cache_max_bytes, _signal_path(settings))


def _signal_path(settings: Settings) -> Path | None:
    """``<database>-menu`` beside a SQLite file, which other processes can open too."""
    if not settings.is_sqlite:
        return None
    url = make_url(settings.database_url)
    if not url.database or url.database == ":memory:" or url.query.get("uri"):
        return None
    return Path(f"{url.database}-menu")


def invalidate_menu(session: AsyncSession) -> None:
    """Drop every cached menu answer once ``session`` commits; nothing happens on rollback.

    Call it from any write that changes what a public menu answer shows: a restaurant, its
    opening hours or owners, a category, a product, its image or rating. Calling it several
    times in one transaction invalidates once."""
    after_commit(session, runtime_of(session).cache.invalidate)
