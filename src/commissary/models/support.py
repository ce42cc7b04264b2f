"""Support chat: a conversation a member opens, and its messages."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from commissary.core.db import NEVER_REUSE_IDS, Base, BigId, IdPk, utcnow


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Conversation(Base):
    """A support conversation. ``message_count`` is bumped, under the row's lock, by every
    message: messages of one conversation therefore commit in the order of their ids, and
    ``SupportMessage.seq`` numbers them without gaps (see ``support.service.send``)."""

    __tablename__ = "support_conversation"
    __table_args__ = (
        Index("ix_support_conversation_customer_id_id", "customer_id", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[IdPk]
    # The member who opened it (any role); NULL once that account is deleted.
    customer_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="SET NULL")
    )
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[ConversationStatus] = mapped_column(
        Enum(
            ConversationStatus,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=ConversationStatus.OPEN,
        index=True,
    )
    assignee_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    message_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="SET NULL")
    )


class SupportMessage(Base):
    """One message, as stored: plain text (HTML removed), numbered ``seq`` = 1, 2, … in its
    conversation."""

    __tablename__ = "support_message"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        Index("ix_support_message_conversation_id_id", "conversation_id", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[IdPk]
    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("support_conversation.id", ondelete="CASCADE")
    )
    seq: Mapped[int]
    author_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
