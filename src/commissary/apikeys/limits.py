"""Each key's rate limit (per minute) and daily quota (per UTC day), counted by the shared
rate limiter: in Redis when configured, else in process (``core.ratelimit``). The answer's
``RateLimit-*`` headers describe whichever of the two is nearer its end."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from commissary.core.ratelimit import RateLimiter

MINUTE = 60


@dataclass(frozen=True, slots=True)
class Verdict:
    refused: str | None  # the problem code when refused: `rate_limited` or `quota_exceeded`
    headers: dict[str, str]


def _headers(limit: int, remaining: int, reset: int, policy: str) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(remaining, 0)),
        "RateLimit-Reset": str(max(reset, 1)),
        "RateLimit-Policy": policy,
    }


def seconds_to_midnight(now: dt.datetime) -> int:
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    return max(int((tomorrow - now).total_seconds()), 1)


async def count(
    limiter: RateLimiter, key_id: int, per_minute: int, quota: int, now: dt.datetime
) -> Verdict:
    """Count one request of the key. A request refused by the minute's limit does not use
    the day's quota."""
    policy = f"{per_minute};w={MINUTE}, {quota};w=86400"
    used, reset = await limiter.hit(f"api-key:{key_id}:minute", MINUTE)
    if used > per_minute:
        headers = _headers(per_minute, 0, reset, policy)
        return Verdict("rate_limited", {**headers, "Retry-After": headers["RateLimit-Reset"]})
    day_key = f"api-key:{key_id}:day:{now.date().isoformat()}"
    used_today, day_reset = await limiter.hit(day_key, seconds_to_midnight(now))
    if used_today > quota:
        headers = _headers(quota, 0, day_reset, policy)
        return Verdict("quota_exceeded", {**headers, "Retry-After": headers["RateLimit-Reset"]})
    if quota - used_today < per_minute - used:
        return Verdict(None, _headers(quota, quota - used_today, day_reset, policy))
    return Verdict(None, _headers(per_minute, per_minute - used, reset, policy))
