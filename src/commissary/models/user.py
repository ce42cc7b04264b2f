from __future__ import annotations

import datetime as dt
import enum
import secrets
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commissary.core.db import NEVER_REUSE_IDS, Base, BigId, IdPk, utcnow


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


# Lower-case letters and digits without the look-alikes (0/o, 1/i/l): a code read aloud or
# typed from a flyer still works, and it needs no escaping in a URL.
REFERRAL_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
REFERRAL_CODE_LENGTH = 10  # 31^10 ≈ 8·10^14 codes: a collision is not worth a retry loop


def new_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))


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
    # The code this member hands out; whoever registers with it is ``referred_by`` them.
    referral_code: Mapped[str] = mapped_column(String(16), unique=True, default=new_referral_code)
    referred_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    # When this referred member completed a first order (set once, by the event hook).
    referral_converted_at: Mapped[dt.datetime | None]

    # A waiter's restaurants (``restaurant_staff``); loaded explicitly where an answer shows
    # ``restaurant_ids``.
    restaurants: Mapped[list[Any]] = relationship(
        "Restaurant", secondary="restaurant_staff", lazy="raise", order_by="Restaurant.id"
    )

    @property
    def restaurant_ids(self) -> list[int]:
        return [restaurant.id for restaurant in self.restaurants]
