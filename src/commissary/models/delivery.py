from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from commissary.core.db import Base, BigId, utcnow


class DeliveryRefusal(Base):
    """A courier said no to an offered delivery: it is not shown to them again."""

    __tablename__ = "delivery_refusal"

    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer_order.id", ondelete="CASCADE"), primary_key=True
    )
    courier_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
