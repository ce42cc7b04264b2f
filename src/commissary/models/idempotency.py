from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from commissary.core.db import NEVER_REUSE_IDS, Base, BigId, IdPk, utcnow


class IdempotencyKey(Base):
    """A member's ``Idempotency-Key`` on a write, with the fingerprint of the request it
    was first sent with and, once that request succeeded, its answer (status, body,
    ``Location``) to replay. ``in_progress`` while the first request runs; ``created_at`` is
    the time of the (last) claim, so a claim older than the lease may be taken over."""

    __tablename__ = "idempotency_key"
    __table_args__ = (
        UniqueConstraint("user_id", "key"),
        CheckConstraint("state IN ('in_progress', 'done')", name="state_known"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user_account.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_location: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
