"""Passwords (argon2, hashed in a thread), signed tokens (JWT) and secret comparison."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from commissary.core.db import utcnow

ALGORITHM = "HS256"
ISSUER = "commissary"

_hasher = PasswordHash((Argon2Hasher(),))
# Verified against when the e-mail is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    ok = await asyncio.to_thread(_hasher.verify, password, password_hash or _DUMMY_HASH)
    return ok and password_hash is not None


class TokenError(Exception):
    """A token that is malformed, expired, or meant for another audience."""


def encode_token(
    secret: str, *, subject: str, audience: str, ttl: int, claims: dict[str, Any] | None = None
) -> str:
    now = utcnow()
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "exp": now + dt.timedelta(seconds=ttl),
        "jti": uuid.uuid4().hex,
        **(claims or {}),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str, *, audience: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("invalid token") from exc
    return claims


def keyed_hash(secret: str, value: str) -> str:
    """A keyed digest for short secrets stored at rest (verification codes)."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def numeric_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"
