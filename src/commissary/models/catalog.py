from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Enum, ForeignKey, Index, Numeric, String, Table, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commissary.core.db import NEVER_REUSE_IDS, Base, BigId, IdPk, utcnow


class KitchenMode(enum.StrEnum):
    SIMULATED = "simulated"
    MANUAL = "manual"


restaurant_owner = Table(
    "restaurant_owner",
    Base.metadata,
    Column(
        "restaurant_id", BigId, ForeignKey("restaurant.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("user_id", BigId, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
)

# The waiters of a restaurant: they key in orders there (see ``orders.adhoc``).
restaurant_staff = Table(
    "restaurant_staff",
    Base.metadata,
    Column(
        "restaurant_id", BigId, ForeignKey("restaurant.id", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "user_id",
        BigId,
        ForeignKey("user_account.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)


class Restaurant(Base):
    __tablename__ = "restaurant"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[IdPk]
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # {"mon": [{"open": "08:00", "close": "14:00"}, ...], ...}; empty means always open.
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kitchen_mode: Mapped[KitchenMode] = mapped_column(
        Enum(
            KitchenMode,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=KitchenMode.SIMULATED,
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    # Paused by its owners: the restaurant stays listed but takes no new orders.
    is_accepting_orders: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owners: Mapped[list[Any]] = relationship("User", secondary=restaurant_owner, lazy="raise")


class Category(Base):
    __tablename__ = "category"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[IdPk]
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# Names are unique regardless of case, enforced by the database so that parallel creates
# of "Drinks" and "DRINKS" cannot both win.
Index("uq_category_name_folded", func.lower(Category.name), unique=True)


class Product(Base):
    """A meal on a restaurant's menu. ``price`` is exact (``Numeric``), never a float."""

    __tablename__ = "product"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[IdPk]
    restaurant_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("restaurant.id", ondelete="CASCADE"), index=True
    )
    category_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("category.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(120), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    ingredients: Mapped[list[str]] = mapped_column(JSON, default=list)
    allergens: Mapped[list[str]] = mapped_column(JSON, default=list)
    origin: Mapped[str | None] = mapped_column(String(80))
    is_available: Mapped[bool] = mapped_column(default=True)
    # The average of the product's ratings to one decimal (None before the first) and their
    # count, kept exact by ``catalog.ratings`` under the product's row lock.
    rating: Mapped[Decimal | None] = mapped_column(Numeric(3, 1))
    ratings_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # The stored file's name under MEDIA_DIR (``products/<random>.webp``); None: no image.
    image: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    option_groups: Mapped[list[OptionGroup]] = relationship(
        back_populates="product",
        lazy="raise",
        order_by="(OptionGroup.position, OptionGroup.id)",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class OptionGroup(Base):
    """A choice offered with a product (a drink's size, milk, extras): between
    ``min_choices`` and ``max_choices`` of its options; a required single choice is 1/1."""

    __tablename__ = "option_group"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[IdPk]
    product_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("product.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    min_choices: Mapped[int] = mapped_column(default=0)
    max_choices: Mapped[int] = mapped_column(default=1)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    product: Mapped[Product] = relationship(back_populates="option_groups", lazy="raise")
    options: Mapped[list[Option]] = relationship(
        back_populates="group",
        lazy="raise",
        order_by="(Option.position, Option.id)",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Option(Base):
    """One choice of a group, with an exact ``price_delta`` (>= 0) added to the product's
    price, and ingredients and allergen tags checked like the product's own."""

    __tablename__ = "product_option"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[IdPk]
    group_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("option_group.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    price_delta: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal(0))
    ingredients: Mapped[list[str]] = mapped_column(JSON, default=list)
    allergens: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_available: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    group: Mapped[OptionGroup] = relationship(back_populates="options", lazy="raise")
