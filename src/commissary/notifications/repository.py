"""Every query of the in-app notifications."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.ids import parse_id
from commissary.core.listing import (
    ORDER_OPS,
    Extra,
    Filter,
    ListQuery,
    ListSpec,
    fetch_page,
    parse_datetime,
)
from commissary.models import Notification, NotificationKind

NOTIFICATION_LIST = ListSpec(
    filters={
        "kind": Filter(Notification.kind, NotificationKind),
        "order_id": Filter(Notification.order_id, parse_id),
        "created_at": Filter(Notification.created_at, parse_datetime, ORDER_OPS),
        "read_at": Filter(Notification.read_at, parse_datetime, ORDER_OPS),
    },
    sortable={"id": Notification.id, "created_at": Notification.created_at},
    default_sort=("-id",),
    search=(Notification.title, Notification.body),
    extra={
        "unread": Extra(
            {"type": "boolean"},
            "`true`: only the unread notifications; `false`: only those read (the same as "
            "`read_at__isnull`).",
        )
    },
)


async def page_of(
    session: AsyncSession, user_id: int, query: ListQuery
) -> tuple[list[Notification], int]:
    mine = select(Notification).where(Notification.user_id == user_id)
    return await fetch_page(session, mine, query, Notification.id.desc())


async def unread_count(session: AsyncSession, user_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return int(count or 0)


async def get_own(session: AsyncSession, user_id: int, notification_id: int) -> Notification | None:
    return await session.scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.user_id == user_id
        )
    )


async def mark_all_read(session: AsyncSession, user_id: int, at: dt.datetime) -> int:
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
