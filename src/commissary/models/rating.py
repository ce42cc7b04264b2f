from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from commissary.core.db import NEVER_REUSE_IDS, Base, BigId, IdPk, utcnow


class Rating(Base):
    """A customer's score (1-10) of a product, with an optional comment: one per customer and
    product. The product keeps the average and count of its ratings (see
    ``catalog.ratings``)."""

    __tablename__ = "product_rating"
    __table_args__ = (
        UniqueConstraint("product_id", "user_id"),
        Index("ix_product_rating_product_id_id", "product_id", "id"),
        CheckConstraint("score BETWEEN 1 AND 10", name="score_range"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[IdPk]
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("product.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
