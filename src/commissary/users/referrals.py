"""Referrals: each member's code, who registered with it, and when they became customers.

A member registers with someone's ``referral_code`` and is linked to them
(``referred_by_id``). The referral counts as converted at the referee's first completed
order: the event stream's hook (``notifications.events``) calls :func:`convert` with the
customers of each batch's completed orders, and only members not converted yet are set, so
it happens once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.errors import field_error
from commissary.core.listing import (
    ORDER_OPS,
    Filter,
    ListQuery,
    ListSpec,
    fetch_page,
    parse_datetime,
)
from commissary.models import User
from commissary.models.user import REFERRAL_ALPHABET

REFERRAL_LIST = ListSpec(
    filters={
        "joined_at": Filter(User.created_at, parse_datetime, ORDER_OPS),
        "converted_at": Filter(User.referral_converted_at, parse_datetime, ORDER_OPS),
    },
    sortable={
        "joined_at": User.created_at,
        "converted_at": User.referral_converted_at,
        "full_name": User.full_name,
    },
    default_sort=("-joined_at",),
    search=(User.full_name,),
)


async def referrer_of(session: AsyncSession, code: str) -> int:
    """The id of the active member whose code ``code`` is; any other code is a 422 on the
    field that says no more than that."""
    folded = code.strip().lower()
    referrer = None
    if folded and all(char in REFERRAL_ALPHABET for char in folded):
        referrer = await session.scalar(
            select(User.id).where(User.referral_code == folded, User.is_active.is_(True))
        )
    if referrer is None:
        raise field_error(
            "referral_code", "this referral code is not valid", code="unknown_referral_code"
        )
    return referrer


async def list_referred(
    session: AsyncSession, referrer_id: int, query: ListQuery
) -> tuple[list[User], int, int]:
    """A page of the members ``referrer_id`` referred, how many in all, how many converted."""
    mine = select(User).where(User.referred_by_id == referrer_id)
    items, total = await fetch_page(session, mine, query, User.id.desc())
    converted = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.referred_by_id == referrer_id, User.referral_converted_at.is_not(None))
    )
    return items, total, int(converted or 0)


async def convert(
    session: AsyncSession, completed_at: Mapping[int, dt.datetime]
) -> list[tuple[int, str, dt.datetime]]:
    """Mark as converted, at their first completed order, the referred members among
    ``completed_at``'s customers not converted yet. Answers ``(referrer id, referee name,
    when)`` of each conversion. One SELECT and one UPDATE (many parameter sets) per batch."""
    if not completed_at:
        return []
    rows = (
        await session.execute(
            select(User.id, User.full_name, User.referred_by_id).where(
                User.id.in_(list(completed_at)),
                User.referred_by_id.is_not(None),
                User.referral_converted_at.is_(None),
            )
        )
    ).all()
    if not rows:
        return []
    # Core, not the ORM: one UPDATE with a parameter set per referee, and the extra WHERE
    # keeps it once-only.
    table = cast(Table, User.__table__)
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("referee"), table.c.referral_converted_at.is_(None))
        .values(referral_converted_at=bindparam("at")),
        [{"referee": row.id, "at": completed_at[row.id]} for row in rows],
    )
    return [(row.referred_by_id, row.full_name, completed_at[row.id]) for row in rows]
