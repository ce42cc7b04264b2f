from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from commissary.core.db import NEVER_REUSE_IDS, Base, BigId, IdPk, utcnow


class ApiKey(Base):
    """A developer's key for a third-party integration. Only the SHA-256 of the secret is
    stored (the secret is 32 random bytes, so a fast hash is enough and a lookup by hash is
    the comparison); ``prefix`` is its start, shown so its owner can tell keys apart."""

    __tablename__ = "api_key"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[IdPk]
    owner_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(24))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    rate_limit_per_minute: Mapped[int]
    daily_quota: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class ApiKeyUsage(Base):
    """The requests one key made in one UTC day: counted against its quota, and refused for
    its rate limit or quota (429). Written in batches by ``apikeys.usage``."""

    __tablename__ = "api_key_usage"

    api_key_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("api_key.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    request_count: Mapped[int] = mapped_column(BigInteger, default=0)
    refused_count: Mapped[int] = mapped_column(BigInteger, default=0)
