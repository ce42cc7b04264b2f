"""API keys: creation (the secret shown once), listing, revocation, usage, and the check of
a presented key."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.apikeys import repository as repo
from commissary.apikeys.schemas import ApiKeyCreate, ApiKeyUsageRead
from commissary.apikeys.scopes import KeyPrincipal, KeyScope
from commissary.apikeys.usage import UsageRecorder
from commissary.config import Settings
from commissary.core.db import utcnow
from commissary.core.errors import Conflict, NotFound, Unauthorized, field_error
from commissary.core.listing import ListQuery
from commissary.models import ApiKey, Role, User
from commissary.ops import audit

KEY_PREFIX = "cmk_live_"
SHOWN_CHARS = 6  # of the random part, in ``prefix``
_KEY_FORMAT = re.compile(r"^cmk_live_[A-Za-z0-9_-]{43}$")
KEY_ROLES = frozenset({Role.DEVELOPER, Role.ADMIN})


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"


def hash_secret(secret: str) -> str:
    """SHA-256 is enough: the secret is 32 random bytes, not a password to stretch."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create(
    session: AsyncSession, owner: User, data: ApiKeyCreate, settings: Settings
) -> tuple[ApiKey, str]:
    """A new key of ``owner``, and its secret (never stored, never shown again)."""
    per_minute = data.rate_limit_per_minute or settings.api_key_rate_limit_per_minute
    if per_minute > settings.api_key_max_rate_limit_per_minute:
        raise field_error(
            "rate_limit_per_minute",
            f"at most {settings.api_key_max_rate_limit_per_minute} requests per minute",
        )
    quota = data.daily_quota or settings.api_key_daily_quota
    if quota > settings.api_key_max_daily_quota:
        raise field_error(
            "daily_quota", f"at most {settings.api_key_max_daily_quota} requests per day"
        )
    if await repo.count_unrevoked(session, owner.id) >= settings.api_keys_per_member:
        raise Conflict(
            f"you already hold {settings.api_keys_per_member} keys; revoke one first",
            code="api_key_limit_reached",
        )
    secret = new_secret()
    key = ApiKey(
        owner_id=owner.id,
        name=data.name,
        prefix=secret[: len(KEY_PREFIX) + SHOWN_CHARS],
        secret_hash=hash_secret(secret),
        scopes=[scope.value for scope in data.scopes],
        rate_limit_per_minute=per_minute,
        daily_quota=quota,
        created_at=utcnow(),
    )
    session.add(key)
    await session.flush()
    audit.record(
        session,
        actor_id=owner.id,
        action="api_key.create",
        entity="api_key",
        entity_id=key.id,
        scopes=key.scopes,
    )
    return key, secret


async def list_keys(
    session: AsyncSession, owner: User, query: ListQuery
) -> tuple[list[ApiKey], int]:
    return await repo.list_page(session, owner.id, query)


async def get_owned(session: AsyncSession, owner: User, key_id: int) -> ApiKey:
    """The caller's own key; anyone else's is a 404."""
    key = await repo.get_owned(session, owner.id, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found", code="api_key_not_found")
    return key


async def revoke(session: AsyncSession, owner: User, key_id: int) -> None:
    """Revoke at once: the next request with the key is a 401. Revoking twice is a no-op."""
    key = await repo.get_owned(session, owner.id, key_id, lock=True)
    if key is None:
        raise NotFound(f"API key {key_id} not found", code="api_key_not_found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            session, actor_id=owner.id, action="api_key.revoke", entity="api_key", entity_id=key.id
        )


async def usage(session: AsyncSession, key: ApiKey, recorder: UsageRecorder) -> ApiKeyUsageRead:
    """What was written, plus what this process counted and has not written yet."""
    day = utcnow().date()
    today, refused, total = await repo.usage(session, key.id, day)
    more_today, more_refused, more_total = recorder.pending(key.id, key.secret_hash, day)
    today, refused, total = today + more_today, refused + more_refused, total + more_total
    return ApiKeyUsageRead(
        day=day,
        today=today,
        refused_today=refused,
        total=total,
        quota_remaining=max(key.daily_quota - today, 0),
    )


def check_credentials(row: Any | None) -> KeyPrincipal:
    """The key a credentials row describes, if it may still be used."""
    if row is None:
        raise InvalidApiKey("unknown API key")
    if row.revoked_at is not None:
        raise InvalidApiKey("this API key was revoked", code="api_key_revoked")
    if not row.is_active or Role(row.role) not in KEY_ROLES:
        raise InvalidApiKey("this API key's owner may no longer use API keys")
    scopes = frozenset(KeyScope(s) for s in row.scopes if s in KeyScope.__members__.values())
    return KeyPrincipal(key_id=row.id, owner_id=row.owner_id, scopes=scopes)


def well_formed(raw: str) -> bool:
    """Whether ``raw`` could be a key at all: anything else is refused without a lookup."""
    return _KEY_FORMAT.match(raw) is not None
