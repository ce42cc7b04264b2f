from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Enum,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commissary.core.db import NEVER_REUSE_IDS, Base, BigId, IdPk, utcnow


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    READY = "ready"
    OUT_FOR_DELIVERY = "out_for_delivery"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Fulfillment(enum.StrEnum):
    PICKUP = "pickup"
    DELIVERY = "delivery"
    DINE_IN = "dine_in"


def _enum(cls: type[enum.StrEnum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class Order(Base):
    """An order. Its status moves only through ``commissary.orders.state.transition``, which
    bumps ``version`` and writes the matching ``OrderEvent``."""

    __tablename__ = "customer_order"
    __table_args__ = (
        Index("ix_customer_order_customer_id_id", "customer_id", "id"),
        Index("ix_customer_order_restaurant_id_id", "restaurant_id", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[IdPk]
    restaurant_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("restaurant.id", ondelete="RESTRICT")
    )
    customer_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="SET NULL")
    )
    customer_name: Mapped[str] = mapped_column(String(120))
    waiter_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[OrderStatus] = mapped_column(
        _enum(OrderStatus), default=OrderStatus.PENDING, index=True
    )
    message: Mapped[str | None] = mapped_column(Text)
    fulfillment: Mapped[Fulfillment] = mapped_column(_enum(Fulfillment), default=Fulfillment.PICKUP)
    delivery_address: Mapped[str | None] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(String(500))
    # The allergies the order is checked against, as declared when it was placed.
    allergies: Mapped[list[str]] = mapped_column(JSON, default=list)
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    version: Mapped[int] = mapped_column(default=0)
    # When the simulated kitchen finishes the order; the periodic order sweep completes it.
    kitchen_due_at: Mapped[dt.datetime | None]
    order_time: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    completed_time: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order",
        lazy="raise",
        order_by="OrderLine.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class OrderLine(Base):
    """A line with the product's name, price, ingredients and allergens as they were when
    the order was placed."""

    __tablename__ = "order_line"
    __table_args__ = (
        # The lines of an order; on PostgreSQL it also carries what the sales report sums,
        # so the report reads the lines of its days' orders from the index alone.
        Index(
            "ix_order_line_order_id",
            "order_id",
            postgresql_include=["product_name", "quantity", "line_total"],
        ),
        NEVER_REUSE_IDS,
    )

    id: Mapped[IdPk]
    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer_order.id", ondelete="CASCADE")
    )
    product_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("product.id", ondelete="SET NULL"), index=True
    )
    product_name: Mapped[str] = mapped_column(String(120), index=True)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    quantity: Mapped[int]
    line_total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    ingredients: Mapped[list[str]] = mapped_column(JSON, default=list)
    allergens: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The chosen options as they were: id, group, name, price_delta (a decimal string),
    # ingredients and allergens of each (see ``orders.pricing``).
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    order: Mapped[Order] = relationship(back_populates="lines", lazy="raise")


class OrderEvent(Base):
    """One step of an order's history: the live stream, notifications, webhooks and the
    audit trail read these.

    ``position`` is the event's place in the one stream of every order's events: global,
    gap-free and increasing in commit order. It is empty when the event is written and given
    by the sequencer (``commissary.events.sequencer``) once the event's transaction has
    committed, so a reader never sees position N+1 before N."""

    __tablename__ = "order_event"
    __table_args__ = (
        UniqueConstraint("order_id", "sequence"),
        Index("ix_order_event_position", "position", unique=True),
        # The events still waiting for their position: the sequencer's queue.
        Index(
            "ix_order_event_unsequenced",
            "id",
            postgresql_where=text("position IS NULL"),
            sqlite_where=text("position IS NULL"),
        ),
        NEVER_REUSE_IDS,
    )

    id: Mapped[IdPk]
    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer_order.id", ondelete="CASCADE"), index=True
    )
    sequence: Mapped[int]
    type: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[OrderStatus | None] = mapped_column(_enum(OrderStatus))
    to_status: Mapped[OrderStatus | None] = mapped_column(_enum(OrderStatus))
    actor_id: Mapped[int | None] = mapped_column(BigId)
    actor: Mapped[str] = mapped_column(String(20))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    position: Mapped[int | None] = mapped_column(BigInteger)


class EventStreamHead(Base):
    """The last position given in the event stream: one row, moved forward by the
    sequencer under its row lock, so positions are never given twice, even when the events
    that held the highest ones are deleted with their order."""

    __tablename__ = "event_stream_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
