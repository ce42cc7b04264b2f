"""Support chat use cases. Who sees what: a conversation belongs to the member who opened
it; `support` and `admin` members see and answer every conversation, every other member
only their own (another's is a 404). Services flush; the boundary commits, then the saved
message or change is published on the conversation's channel."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.db import after_commit, utcnow
from commissary.core.errors import Conflict, Forbidden, NotFound, TooManyRequests
from commissary.core.listing import ListQuery
from commissary.core.realtime import Frame
from commissary.models import Conversation, ConversationStatus, Role, SupportMessage, User
from commissary.support import repository as repo
from commissary.support.schemas import ConversationCreate, ConversationRead, MessageRead

STAFF = frozenset({Role.SUPPORT, Role.ADMIN})
QUEUE_CHANNEL = "support.queue"  # every conversation change, for the support team


def channel(conversation_id: int) -> str:
    return f"support.conversation.{conversation_id}"


def is_staff(user: User) -> bool:
    return user.role in STAFF


def visibility(user: User) -> ColumnElement[bool] | None:
    """The conversations ``user`` may see: None means all of them."""
    return None if is_staff(user) else Conversation.customer_id == user.id


async def get_visible(
    session: AsyncSession, user: User, conversation_id: int, *, lock: bool = False
) -> Conversation:
    conversation = await repo.get(session, conversation_id, lock=lock)
    if conversation is None or not (is_staff(user) or conversation.customer_id == user.id):
        raise NotFound(f"no conversation {conversation_id}", code="conversation_not_found")
    return conversation


def message_frame(message: SupportMessage) -> Frame:
    return {"type": "message", **MessageRead.model_validate(message).model_dump(mode="json")}


def conversation_frame(conversation: Conversation) -> Frame:
    read = ConversationRead.model_validate(conversation).model_dump(mode="json")
    return {"type": "conversation", "conversation": read}


def _publish(session: AsyncSession, frame: Frame, *channels: str) -> None:
    hub = jobs.runtime_of(session).realtime

    async def _send() -> None:
        for name in channels:
            await hub.publish(name, frame)

    after_commit(session, _send)


async def _throttle(session: AsyncSession, user: User) -> None:
    settings = jobs.runtime_of(session).settings
    count, retry = await jobs.runtime_of(session).limiter.hit(
        f"support:member:{user.id}", settings.support_message_rate_window
    )
    if count > settings.support_message_rate_limit:
        raise TooManyRequests(
            f"at most {settings.support_message_rate_limit} messages per "
            f"{settings.support_message_rate_window} s",
            code="message_rate_limited",
            headers={"Retry-After": str(retry)},
        )


async def open_conversation(
    session: AsyncSession, user: User, data: ConversationCreate
) -> Conversation:
    """Open a conversation with its first message."""
    await _throttle(session, user)
    conversation = Conversation(customer_id=user.id, subject=data.subject)
    session.add(conversation)
    await session.flush()
    await _append(session, user, conversation, data.message)
    _publish(session, conversation_frame(conversation), QUEUE_CHANNEL)
    return conversation


async def send(
    session: AsyncSession, user: User, conversation_id: int, body: str
) -> SupportMessage:
    """Save a message, published once committed. The conversation's row is locked first,
    so two messages of one conversation commit in the order of their ids and ``seq``."""
    await _throttle(session, user)
    conversation = await get_visible(session, user, conversation_id, lock=True)
    if conversation.status is ConversationStatus.CLOSED:
        raise Conflict("the conversation is closed", code="conversation_closed")
    if is_staff(user) and conversation.customer_id != user.id:
        _check_not_taken(user, conversation)
        if conversation.assignee_id is None:  # the first reply takes it
            conversation.assignee_id = user.id
            _publish(session, conversation_frame(conversation), QUEUE_CHANNEL)
    return await _append(session, user, conversation, body)


async def _append(
    session: AsyncSession, user: User, conversation: Conversation, body: str
) -> SupportMessage:
    now = utcnow()
    conversation.message_count += 1
    conversation.last_message_at = conversation.updated_at = now
    message = SupportMessage(
        conversation_id=conversation.id,
        seq=conversation.message_count,
        author_id=user.id,
        body=body,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    _publish(session, message_frame(message), channel(conversation.id))
    return message


def _check_not_taken(user: User, conversation: Conversation) -> None:
    if (
        user.role is not Role.ADMIN
        and conversation.assignee_id is not None
        and conversation.assignee_id != user.id
    ):
        raise Conflict(
            f"support member {conversation.assignee_id} has taken this conversation",
            code="conversation_taken",
        )


async def take(session: AsyncSession, user: User, conversation_id: int) -> Conversation:
    """A support member (or an admin) takes an open conversation; taking one's own again is
    a no-op, taking one another member holds is a 409 (an admin may take it over)."""
    if not is_staff(user):
        raise Forbidden("only support members take conversations")
    conversation = await get_visible(session, user, conversation_id, lock=True)
    if conversation.status is ConversationStatus.CLOSED:
        raise Conflict("the conversation is closed", code="conversation_closed")
    _check_not_taken(user, conversation)
    if conversation.assignee_id != user.id:
        conversation.assignee_id, conversation.updated_at = user.id, utcnow()
        await session.flush()
        frame = conversation_frame(conversation)
        _publish(session, frame, channel(conversation.id), QUEUE_CHANNEL)
    return conversation


async def close(session: AsyncSession, user: User, conversation_id: int) -> Conversation:
    """Either side closes a conversation; closing a closed one changes nothing."""
    conversation = await get_visible(session, user, conversation_id, lock=True)
    if conversation.status is ConversationStatus.OPEN:
        now = utcnow()
        conversation.status = ConversationStatus.CLOSED
        conversation.closed_at = conversation.updated_at = now
        conversation.closed_by_id = user.id
        await session.flush()
        frame = conversation_frame(conversation)
        _publish(session, frame, channel(conversation.id), QUEUE_CHANNEL)
    return conversation


async def list_conversations(
    session: AsyncSession, user: User, query: ListQuery
) -> tuple[list[Conversation], int]:
    return await repo.list_conversations(session, visibility(user), query)


async def list_messages(
    session: AsyncSession, user: User, conversation_id: int, after_id: int | None, query: ListQuery
) -> tuple[list[SupportMessage], int]:
    await get_visible(session, user, conversation_id)
    return await repo.list_messages(session, conversation_id, after_id, query)


async def messages_after(
    session: AsyncSession, conversation_id: int, after_id: int, limit: int
) -> Sequence[SupportMessage]:
    return await repo.messages_after(session, conversation_id, after_id, limit)
