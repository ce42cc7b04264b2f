from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from commissary.core.db import NEVER_REUSE_IDS, Base, BigId, IdPk, utcnow


class AuditLog(Base):
    """Who did what to which entity, and when. Written in the same transaction as the act."""

    __tablename__ = "audit_log"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[IdPk]
    actor_id: Mapped[int | None] = mapped_column(BigId, index=True)
    action: Mapped[str] = mapped_column(String(80), index=True)
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class OutboxJob(Base):
    """A job recorded in the transaction that asked for it. The job deletes its row in the
    transaction that does its work, so a row that lingers is a job still owed; the relay
    re-sends those (queue down, worker died)."""

    __tablename__ = "outbox_job"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[IdPk]
    name: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    not_before: Mapped[dt.datetime | None]
    relayed: Mapped[int] = mapped_column(default=0)
    failed_at: Mapped[dt.datetime | None]
