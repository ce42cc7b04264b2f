"""Every query of the users package."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commissary.core.db import DriverStatement
from commissary.core.listing import (
    ORDER_OPS,
    TEXT_OPS,
    Filter,
    ListQuery,
    ListSpec,
    fetch_page,
    parse_bool,
    parse_datetime,
)
from commissary.models import EmailVerification, RefreshToken, Role, User
from commissary.users.rules import fold_email

USER_LIST = ListSpec(
    filters={
        "email": Filter(User.email, ops=TEXT_OPS),
        "full_name": Filter(User.full_name, ops=TEXT_OPS),
        "role": Filter(User.role, Role),
        "is_verified": Filter(User.is_verified, parse_bool),
        "is_active": Filter(User.is_active, parse_bool),
        "planet": Filter(User.planet, ops=TEXT_OPS),
        "created_at": Filter(User.created_at, parse_datetime, ORDER_OPS),
    },
    sortable={
        "id": User.id,
        "email": User.email,
        "full_name": User.full_name,
        "created_at": User.created_at,
        "role": User.role,
    },
    default_sort=("id",),
    search=(User.email, User.full_name),
)


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


# What a hot path needs of an account (``auth_service.Member`` and the token's checks).
MEMBER_COLUMNS = (
    User.id,
    User.role,
    User.is_verified,
    User.is_active,
    User.full_name,
    User.allergies,
    User.token_key,
)
MEMBER_QUERY = DriverStatement(select(*MEMBER_COLUMNS).where(User.id == bindparam("user_id")))


async def member_row(session: AsyncSession, user_id: int) -> Any | None:
    """What a hot path needs of an account, as a named tuple (``role`` as its string value
    on PostgreSQL): no ORM object is built or tracked."""
    rows = await MEMBER_QUERY.fetch(session, {"user_id": user_id})
    return rows[0] if rows else None


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == fold_email(email)))


async def list_page(session: AsyncSession, query: ListQuery) -> tuple[list[User], int]:
    stmt = select(User).options(selectinload(User.restaurants))
    return await fetch_page(session, stmt, query, User.id)


async def unverified_ids_older_than(
    session: AsyncSession, cutoff: dt.datetime, batch: int
) -> Sequence[int]:
    stmt = select(User.id).where(*_never_verified_before(cutoff)).order_by(User.id).limit(batch)
    return (await session.scalars(stmt)).all()


def _never_verified_before(cutoff: dt.datetime) -> list[ColumnElement[bool]]:
    # verified_at keeps the first verification, so an account an admin un-verifies stays.
    return [User.is_verified.is_(False), User.verified_at.is_(None), User.created_at < cutoff]


async def delete_unverified(session: AsyncSession, ids: Sequence[int], cutoff: dt.datetime) -> int:
    """Delete those of ``ids`` that are still never-verified: one verified meanwhile stays."""
    result = await session.execute(
        delete(User).where(User.id.in_(ids), *_never_verified_before(cutoff))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def delete_users(session: AsyncSession, ids: Sequence[int]) -> int:
    # Tokens and pending verifications go with the account (ON DELETE CASCADE).
    result = await session.execute(delete(User).where(User.id.in_(ids)))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def get_verification(session: AsyncSession, user_id: int) -> EmailVerification | None:
    return await session.get(EmailVerification, user_id, with_for_update=True)


async def get_refresh_token(session: AsyncSession, jti: str) -> RefreshToken | None:
    return await session.get(RefreshToken, jti, with_for_update=True)


async def revoke_family(session: AsyncSession, family_id: str, at: dt.datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )


async def revoke_all_of(session: AsyncSession, user_id: int, at: dt.datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )
