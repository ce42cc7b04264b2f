"""Fixed-window counters: in Redis when configured (shared by every replica), else in process."""

from __future__ import annotations

import math
import time
from typing import Protocol

from redis.asyncio import Redis


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

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        k = self.PREFIX + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(k)
            pipe.expire(k, window, nx=True)
            pipe.ttl(k)
            count, _, ttl = await pipe.execute()
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
