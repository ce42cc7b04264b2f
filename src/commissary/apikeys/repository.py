"""Every query of the API keys package."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Date, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.listing import (
    ORDER_OPS,
    TEXT_OPS,
    Filter,
    ListQuery,
    ListSpec,
    fetch_page,
    parse_datetime,
)
from commissary.models import ApiKey, ApiKeyUsage, User

KEY_LIST = ListSpec(
    filters={
        "name": Filter(ApiKey.name, str, TEXT_OPS),
        "prefix": Filter(ApiKey.prefix, str, TEXT_OPS),
        "created_at": Filter(ApiKey.created_at, parse_datetime, ORDER_OPS),
        "last_used_at": Filter(ApiKey.last_used_at, parse_datetime, ORDER_OPS),
        "revoked_at": Filter(ApiKey.revoked_at, parse_datetime, ORDER_OPS),
    },
    sortable={
        "id": ApiKey.id,
        "name": ApiKey.name,
        "created_at": ApiKey.created_at,
        "last_used_at": ApiKey.last_used_at,
    },
    default_sort=("-id",),
    search=(ApiKey.name,),
)

# One statement per key request: the key, and what of its owner decides whether it works.
CREDENTIALS = (
    select(
        ApiKey.id,
        ApiKey.scopes,
        ApiKey.rate_limit_per_minute,
        ApiKey.daily_quota,
        ApiKey.revoked_at,
        User.id.label("owner_id"),
        User.role,
        User.is_active,
    )
    .join(User, User.id == ApiKey.owner_id)
    .where(ApiKey.secret_hash == bindparam("secret_hash"))
)


async def credentials(session: AsyncSession, secret_hash: str) -> Any | None:
    return (await session.execute(CREDENTIALS, {"secret_hash": secret_hash})).first()


async def list_page(
    session: AsyncSession, owner_id: int, query: ListQuery
) -> tuple[list[ApiKey], int]:
    stmt = select(ApiKey).where(ApiKey.owner_id == owner_id)
    return await fetch_page(session, stmt, query, ApiKey.id)


async def get_owned(
    session: AsyncSession, owner_id: int, key_id: int, *, lock: bool = False
) -> ApiKey | None:
    stmt = select(ApiKey).where(ApiKey.id == key_id, ApiKey.owner_id == owner_id)
    if lock:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def count_unrevoked(session: AsyncSession, owner_id: int) -> int:
    stmt = select(func.count()).where(ApiKey.owner_id == owner_id, ApiKey.revoked_at.is_(None))
    return int(await session.scalar(stmt) or 0)


async def usage(session: AsyncSession, key_id: int, day: dt.date) -> tuple[int, int, int]:
    """(requests today, refused today, requests in all) as written so far."""
    today = func.sum(ApiKeyUsage.request_count).filter(ApiKeyUsage.day == day)
    refused = func.sum(ApiKeyUsage.refused_count).filter(ApiKeyUsage.day == day)
    stmt = select(today, refused, func.sum(ApiKeyUsage.request_count)).where(
        ApiKeyUsage.api_key_id == key_id
    )
    row = (await session.execute(stmt)).one()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


# Counts are added to the day's row; a key deleted meanwhile (or, between tests, another key
# given the same id) matches no row and its counts are dropped.
_ADD_USAGE = text(
    """
    INSERT INTO api_key_usage (api_key_id, day, request_count, refused_count)
    SELECT id, :day, :requests, :refused FROM api_key WHERE id = :key_id AND secret_hash = :hash
    ON CONFLICT (api_key_id, day) DO UPDATE SET
        request_count = api_key_usage.request_count + excluded.request_count,
        refused_count = api_key_usage.refused_count + excluded.refused_count
    """
).bindparams(
    # Typed, so PostgreSQL is told the types of the values it selects (asyncpg casts them).
    bindparam("day", type_=Date),
    bindparam("requests", type_=BigInteger),
    bindparam("refused", type_=BigInteger),
)
_TOUCH = text(
    """
    UPDATE api_key SET last_used_at = :used_at
    WHERE id = :key_id AND secret_hash = :hash
      AND (last_used_at IS NULL OR last_used_at < :used_at)
    """
).bindparams(bindparam("used_at", type_=ApiKey.__table__.c.last_used_at.type))


async def add_usage(
    session: AsyncSession, counts: Sequence[dict[str, Any]], used: Sequence[dict[str, Any]]
) -> None:
    """Add a batch of counts (``key_id``, ``hash``, ``day``, ``requests``, ``refused``) and
    move each key's ``last_used_at`` forward (``key_id``, ``hash``, ``used_at``)."""
    if counts:
        await session.execute(_ADD_USAGE, list(counts))
    if used:
        await session.execute(_TOUCH, list(used))
