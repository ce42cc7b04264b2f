"""Fixed-window counters: in Redis when configured (shared by every replica), else in process.
While a configured Redis is away they count in process, so sign-in keeps answering."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from commissary.core.redis import UNAVAILABLE, Batcher, Outage

T = TypeVar("T")


class RateLimiter(Protocol):
    async def hit(self, key: str, window: int) -> tuple[int, int]:
        """Count one event; return (count in the window, seconds until the window ends)."""

    async def peek(self, key: str) -> tuple[int, int]: ...

    async def reset(self, key: str) -> None: ...


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}

    def _live(self, key: str) -> tuple[int, float] | None:
        entry = self._windows.get(key)
        if entry and entry[1] <= time.monotonic():
            del self._windows[key]
            return None
        return entry

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        count, ends = self._live(key) or (0, time.monotonic() + window)
        self._windows[key] = (count + 1, ends)
        if len(self._windows) > 100_000:
            for stale in [k for k, (_, e) in self._windows.items() if e <= time.monotonic()]:
                del self._windows[stale]
        return count + 1, math.ceil(ends - time.monotonic())

    async def peek(self, key: str) -> tuple[int, int]:
        entry = self._live(key)
        return (entry[0], math.ceil(entry[1] - time.monotonic())) if entry else (0, 0)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)


class RedisRateLimiter:
    PREFIX = "commissary:rl:"

    # One command to send and parse instead of MULTI/INCR/EXPIRE/TTL/EXEC; atomic all the same.
    HIT_SCRIPT = """
    local count = redis.call('INCR', KEYS[1])
    local ttl = redis.call('TTL', KEYS[1])
    if ttl < 0 then
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        ttl = tonumber(ARGV[1])
    end
    return {count, ttl}
    """

    def __init__(self, redis: Redis, batcher: Batcher | None = None) -> None:
        self._redis = redis
        self._batcher = batcher or Batcher(redis)
        self._hit = redis.register_script(self.HIT_SCRIPT)

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        """Counted in the process's next batch of Redis commands (``redis.Batcher``)."""
        command = ("EVALSHA", self._hit.sha, 1, self.PREFIX + key, window)
        try:
            count, ttl = await self._batcher.call(*command)
        except NoScriptError:  # a restarted or flushed Redis: load the script, count again
            await self._redis.script_load(self.HIT_SCRIPT)
            count, ttl = await self._batcher.call(*command)
        return int(count), max(int(ttl), 1)

    async def peek(self, key: str) -> tuple[int, int]:
        k = self.PREFIX + key
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(k)
            pipe.ttl(k)
            count, ttl = await pipe.execute()
        return int(count or 0), max(int(ttl), 0)

    async def reset(self, key: str) -> None:
        await self._redis.delete(self.PREFIX + key)


class FallbackRateLimiter:
    """Counts in Redis; while Redis is away, in this process, and in Redis again once it
    answers. In process, each replica counts for itself: the limits are looser by the
    number of replicas for the length of the outage, instead of sign-in failing. While
    Redis is away it is tried again at most once every ``PROBE_EVERY`` seconds, so requests
    do not each wait for a refused connection."""

    PROBE_EVERY = 1.0

    def __init__(self, redis: Redis, batcher: Batcher | None = None) -> None:
        self._redis = RedisRateLimiter(redis, batcher)
        self._memory = MemoryRateLimiter()
        self._outage = Outage("rate_limiter", fallback="counting in process")
        self._probe_at = 0.0

    async def _either(
        self, in_redis: Callable[[], Awaitable[T]], in_memory: Callable[[], Awaitable[T]]
    ) -> T:
        if self._outage.is_down:
            if time.monotonic() < self._probe_at:
                return await in_memory()
            # This caller probes Redis; the others keep counting in process meanwhile, so a
            # hung Redis costs one request a time-out per interval, not every request.
            self._probe_at = time.monotonic() + self.PROBE_EVERY
        try:
            result = await in_redis()
        except UNAVAILABLE as exc:
            self._outage.down(exc)
            self._probe_at = time.monotonic() + self.PROBE_EVERY
            return await in_memory()
        self._outage.up()
        return result

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        return await self._either(
            lambda: self._redis.hit(key, window), lambda: self._memory.hit(key, window)
        )

    async def peek(self, key: str) -> tuple[int, int]:
        return await self._either(lambda: self._redis.peek(key), lambda: self._memory.peek(key))

    async def reset(self, key: str) -> None:
        await self._memory.reset(key)  # an in-process count may outlive the outage
        await self._either(lambda: self._redis.reset(key), lambda: asyncio.sleep(0))
