"""Redis clients for the API and the job dispatcher: bounded timeouts, and reconnection with
backoff so a Redis restart does not fail the first calls on stale pooled connections."""

from __future__ import annotations

from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

_OPTIONS: dict[str, Any] = {
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
    "health_check_interval": 30,
    "retry_on_error": [RedisConnectionError, RedisTimeoutError],
}


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=1.0, base=0.05)


def async_client(url: str) -> Redis:
    return Redis.from_url(url, retry=AsyncRetry(_backoff(), retries=3), **_OPTIONS)


def cache_client(url: str) -> Redis:
    """For the answer cache, which falls back to the database: fail within a fraction of a
    second instead of retrying with backoff, so a Redis outage does not slow reads down. One
    immediate retry replaces a pooled connection that went stale in a Redis restart."""
    options = {**_OPTIONS, "socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    return Redis.from_url(url, retry=AsyncRetry(NoBackoff(), retries=1), **options)


def sync_client(url: str) -> SyncRedis:
    """For RQ, which speaks the synchronous client (used off the event loop)."""
    return SyncRedis.from_url(url, retry=Retry(_backoff(), retries=2), **_OPTIONS)
