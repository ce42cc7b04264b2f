"""Every query of the support package."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.ids import parse_id
from commissary.core.listing import (
    ORDER_OPS,
    Filter,
    ListQuery,
    ListSpec,
    bounded_int,
    fetch_page,
    parse_datetime,
)
from commissary.models import Conversation, ConversationStatus, SupportMessage

CONVERSATION_LIST = ListSpec(
    filters={
        "status": Filter(Conversation.status, ConversationStatus),
        "customer_id": Filter(Conversation.customer_id, parse_id),
        "assignee_id": Filter(Conversation.assignee_id, parse_id),
        "created_at": Filter(Conversation.created_at, parse_datetime, ORDER_OPS),
        "last_message_at": Filter(Conversation.last_message_at, parse_datetime, ORDER_OPS),
    },
    sortable={
        "id": Conversation.id,
        "created_at": Conversation.created_at,
        "last_message_at": Conversation.last_message_at,
        "status": Conversation.status,
    },
    default_sort=("-id",),
    search=(Conversation.subject,),
)

MESSAGE_LIST = ListSpec(
    filters={
        "author_id": Filter(SupportMessage.author_id, parse_id),
        "created_at": Filter(SupportMessage.created_at, parse_datetime, ORDER_OPS),
        "seq": Filter(SupportMessage.seq, bounded_int(0, 2**31 - 1), ORDER_OPS),
    },
    sortable={"id": SupportMessage.id, "created_at": SupportMessage.created_at},
    default_sort=("id",),
    search=(SupportMessage.body,),
)


async def get(
    session: AsyncSession, conversation_id: int, *, lock: bool = False
) -> Conversation | None:
    stmt = select(Conversation).where(Conversation.id == conversation_id)
    if lock:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def list_conversations(
    session: AsyncSession, visible: ColumnElement[bool] | None, query: ListQuery
) -> tuple[list[Conversation], int]:
    stmt = select(Conversation)
    if visible is not None:
        stmt = stmt.where(visible)
    return await fetch_page(session, stmt, query, Conversation.id)


async def list_messages(
    session: AsyncSession, conversation_id: int, after_id: int | None, query: ListQuery
) -> tuple[list[SupportMessage], int]:
    stmt = select(SupportMessage).where(SupportMessage.conversation_id == conversation_id)
    if after_id is not None:
        stmt = stmt.where(SupportMessage.id > after_id)
    return await fetch_page(session, stmt, query, SupportMessage.id)


async def messages_after(
    session: AsyncSession, conversation_id: int, after_id: int, limit: int
) -> Sequence[SupportMessage]:
    """The next ``limit`` messages after ``after_id``, oldest first."""
    stmt = (
        select(SupportMessage)
        .where(SupportMessage.conversation_id == conversation_id, SupportMessage.id > after_id)
        .order_by(SupportMessage.id)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


async def position(
    session: AsyncSession, conversation_id: int, at_id: int | None
) -> tuple[int, int]:
    """(id, seq) of the last message at or before ``at_id`` (the latest when None), or
    (``at_id`` or 0, 0) when there is none."""
    stmt = select(SupportMessage.id, SupportMessage.seq).where(
        SupportMessage.conversation_id == conversation_id
    )
    if at_id is not None:
        stmt = stmt.where(SupportMessage.id <= at_id)
    row = (await session.execute(stmt.order_by(SupportMessage.id.desc()).limit(1))).first()
    if row is None:
        return at_id or 0, 0
    return (max(at_id, row.id) if at_id is not None else row.id), row.seq
