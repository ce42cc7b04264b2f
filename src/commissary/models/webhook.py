"""Webhooks: an integrator's URL subscribed to order event types, and the log of what was
sent to it."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from commissary.core.db import NEVER_REUSE_IDS, Base, BigId, IdPk, utcnow


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Webhook(Base):
    """A receiver URL of one member. ``secret`` (``whsec_`` + base64) signs every delivery;
    it is kept readable because signing needs it, and shown only when made or rotated."""

    __tablename__ = "webhook"
    __table_args__ = (Index("ix_webhook_owner_id_id", "owner_id", "id"), NEVER_REUSE_IDS)

    id: Mapped[IdPk]
    owner_id: Mapped[int] = mapped_column(BigId, ForeignKey("user_account.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    # Event types (``commissary.webhooks.schemas.EVENT_TYPES``), or ``["*"]`` for all.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(default=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One event sent (or to be sent) to one webhook: at most one per webhook and event, so
    its id is the ``webhook-id`` a receiver can deduplicate on, on every retry and replay."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_delivery_webhook_id_id", "webhook_id", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[IdPk]
    webhook_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhook.id", ondelete="CASCADE"))
    # The event's stream position (``OrderEvent.position``); no foreign key: the log outlives
    # a deleted order.
    event_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(
            DeliveryStatus,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=DeliveryStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_response_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None]
