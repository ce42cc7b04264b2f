"""A member's in-app notifications: list, mark one read, mark all read. Services flush,
never commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.db import utcnow
from commissary.core.errors import NotFound
from commissary.core.listing import ListQuery
from commissary.models import Notification, User
from commissary.notifications import repository as repo


async def list_own(
    session: AsyncSession, user: User, query: ListQuery
) -> tuple[list[Notification], int, int]:
    """A page of the member's notifications, how many match, and how many are unread."""
    items, total = await repo.page_of(session, user.id, query)
    return items, total, await repo.unread_count(session, user.id)


async def mark_read(session: AsyncSession, user: User, notification_id: int) -> Notification:
    """Mark one of the member's notifications read (again: no change). Another member's is a
    404, as one that does not exist."""
    notification = await repo.get_own(session, user.id, notification_id)
    if notification is None:
        raise NotFound(f"notification {notification_id} not found", code="notification_not_found")
    if notification.read_at is None:
        notification.read_at = utcnow()
        await session.flush()
    return notification


async def mark_all_read(session: AsyncSession, user: User) -> int:
    """Mark every unread notification of the member read; answers how many."""
    return await repo.mark_all_read(session, user.id, utcnow())
