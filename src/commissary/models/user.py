from __future__ import annotations

import datetime as dt
import enum
import secrets
from typing import Any

from sqlalchemy import JSON, Enum, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commissary.core.db import NEVER_REUSE_IDS, Base, IdPk, utcnow


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    WAITER = "waiter"
    RESTAURATEUR = "restaurateur"
    COURIER = "courier"
    SUPPORT = "support"
    SALES = "sales"
    DEVELOPER = "developer"
    ADMIN = "admin"


def new_token_key() -> str:
    return secrets.token_hex(16)


class User(Base):
    """An account. ``email`` is stored lower-cased, which makes uniqueness case-insensitive."""

    __tablename__ = "user_account"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[IdPk]
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=Role.CUSTOMER,
    )
    is_verified: Mapped[bool] = mapped_column(default=False)
    verified_at: Mapped[dt.datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    planet: Mapped[str | None] = mapped_column(String(80))
    allergies: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Signed into every access token and checked against the row: a token works only for
    # the account it was issued to, and a new key (password change, deactivation) revokes
    # every token issued before.
    token_key: Mapped[str] = mapped_column(String(32), default=new_token_key)

    # A waiter's restaurants (``restaurant_staff``); loaded explicitly where an answer shows
    # ``restaurant_ids``.
    restaurants: Mapped[list[Any]] = relationship(
        "Restaurant", secondary="restaurant_staff", lazy="raise", order_by="Restaurant.id"
    )

    @property
    def restaurant_ids(self) -> list[int]:
        return [restaurant.id for restaurant in self.restaurants]
