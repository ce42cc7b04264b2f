"""The cart: one per customer, lines of products with their chosen options."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commissary.core.db import NEVER_REUSE_IDS, Base, BigId, IdPk, utcnow


class Cart(Base):
    __tablename__ = "cart"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[IdPk]
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    items: Mapped[list[CartItem]] = relationship(
        back_populates="cart",
        lazy="raise",
        order_by="CartItem.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class CartItem(Base):
    """A product and the ids of its chosen options (sorted), priced from the menu when the
    cart is read; lines with the same product and options are one line."""

    __tablename__ = "cart_item"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[IdPk]
    cart_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("cart.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("product.id", ondelete="CASCADE"), index=True
    )
    option_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    quantity: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    cart: Mapped[Cart] = relationship(back_populates="items", lazy="raise")
