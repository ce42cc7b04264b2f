"""HTTP endpoints of a member's in-app notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from commissary.core.deps import SessionDep
from commissary.core.ids import IdPath
from commissary.core.listing import BadListQuery, ListQuery, list_query, parse_bool
from commissary.models import Notification
from commissary.notifications import repository as repo
from commissary.notifications import service
from commissary.notifications.schemas import NotificationPage, NotificationRead, ReadAllAnswer
from commissary.users.dependencies import CurrentUser

router = APIRouter(prefix="/notifications", tags=["notifications"])


class notification_list_query(list_query):  # noqa: N801 - a dependency factory, like list_query
    """The list's query, with ``unread`` (declared as an extra of the spec) as a condition."""

    def __call__(self, request: Request) -> ListQuery:
        query = super().__call__(request)
        raw = request.query_params.get("unread")
        if raw is not None:
            try:
                unread = parse_bool(raw)
            except ValueError as exc:
                raise BadListQuery(
                    f"invalid value for 'unread': {exc}", extra={"parameter": "unread"}
                ) from None
            read_at = Notification.read_at
            query.where.append(read_at.is_(None) if unread else read_at.is_not(None))
        return query


@router.get("", response_model=NotificationPage)
async def list_notifications(
    user: CurrentUser,
    query: Annotated[ListQuery, Depends(notification_list_query(repo.NOTIFICATION_LIST))],
    session: SessionDep,
) -> object:
    """The signed-in member's notifications, newest first, with how many are unread.
    Filters: `unread`, `kind`, `order_id`, `created_at`, `read_at` (with `__op` suffixes,
    e.g. `read_at__isnull=true`); `search` (title and text), `sort`, `limit` (≤ 100),
    `offset`."""
    items, total, unread = await service.list_own(session, user, query)
    return {
        "items": items,
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
        "unread": unread,
    }


@router.post("/read-all", response_model=ReadAllAnswer)
async def read_all_notifications(user: CurrentUser, session: SessionDep) -> object:
    """Mark every unread notification of the signed-in member read; answers how many."""
    return {"count": await service.mark_all_read(session, user)}


@router.post("/{notification_id}/read", response_model=NotificationRead)
async def read_notification(
    notification_id: IdPath, user: CurrentUser, session: SessionDep
) -> object:
    """Mark one of your notifications read (again: nothing changes). Another member's
    notification is a 404, as one that does not exist."""
    return await service.mark_read(session, user, notification_id)
