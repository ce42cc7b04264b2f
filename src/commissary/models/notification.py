from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from commissary.core.db import NEVER_REUSE_IDS, Base, BigId, IdPk, utcnow


class NotificationKind(enum.StrEnum):
    """What a notification is about; which order events make which is in
    ``commissary.notifications.events``."""

    ORDER_CREATED = "order.created"
    ORDER_ACCEPTED = "order.accepted"
    ORDER_REJECTED = "order.rejected"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_READY = "order.ready"
    ORDER_OUT_FOR_DELIVERY = "order.out_for_delivery"
    ORDER_COMPLETED = "order.completed"
    ORDER_ACCEPTANCE_OVERDUE = "order.acceptance_overdue"
    COURIER_ASSIGNED = "courier.assigned"
    DELIVERY_RELEASED = "delivery.released"
    DELIVERY_CANCELLED = "delivery.cancelled"
    REFERRAL_CONVERTED = "referral.converted"


class Notification(Base):
    """An in-app message to one member about an order event (or a referral). Written in bulk
    by the event stream's hook; ``emailed_at`` is set once its e-mail went out."""

    __tablename__ = "notification"
    __table_args__ = (
        # A member's list, newest first, and the unread ones among them.
        Index("ix_notification_user_id_id", "user_id", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user_account.id", ondelete="CASCADE"))
    order_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("customer_order.id", ondelete="CASCADE"), index=True
    )
    # The stream position of the event it reports (none for a referral's conversion).
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[NotificationKind] = mapped_column(
        Enum(
            NotificationKind,
            native_enum=False,
            length=40,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[dt.datetime | None]
    emailed_at: Mapped[dt.datetime | None]
