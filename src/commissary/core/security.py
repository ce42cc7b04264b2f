"""Passwords (argon2, hashed in a bounded pool of its own), signed tokens (JWT), the
signing key of the embedded default, and secret comparison."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import os
import secrets
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import jwt
import structlog
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy.engine import make_url

from commissary.config import Settings
from commissary.core.db import utcnow
from commissary.core.ids import parse_id

ALGORITHM = "HS256"
ISSUER = "commissary"
RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "iat", "exp", "nbf", "jti"})

T = TypeVar("T")


class Passwords:
    """Argon2 hashing with the configured cost, run in a small pool of its own threads so a
    burst of sign-ins queues there instead of starving every other ``to_thread`` user."""

    def __init__(self, settings: Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.password_hash_time_cost,
                    memory_cost=settings.password_hash_memory_cost,
                ),
            )
        )
        self._pool = ThreadPoolExecutor(
            max_workers=settings.password_hash_workers, thread_name_prefix="password-hash"
        )
        # Verified against when the e-mail is unknown, so both answers take the same time;
        # made with the configured cost, or the two answers would differ.
        self._dummy = self._hash.hash(secrets.token_urlsafe(16))

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def hash(self, password: str) -> str:
        return await self._run(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        ok, _ = await self.verify_and_update(password, password_hash)
        return ok

    async def verify_and_update(
        self, password: str, password_hash: str | None
    ) -> tuple[bool, str | None]:
        """Check ``password``; when it matches a hash made with other parameters, also return
        a new hash made with the current ones (to be stored)."""
        try:
            ok, new = await self._run(
                self._hash.verify_and_update, password, password_hash or self._dummy
            )
        except UnknownHashError:
            return False, None
        if password_hash is None:
            return False, None
        return ok, new

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class TokenError(Exception):
    """A token that is malformed, expired, or meant for another audience."""


def encode_token(
    secret: str,
    *,
    subject: str,
    audience: str,
    ttl: int,
    claims: dict[str, Any] | None = None,
    token_id: str | None = None,
) -> str:
    """Sign a token (``token_id``: its ``jti``, random by default). Extra ``claims`` may not
    set the registered ones (expiry, audience, issuer, subject, id): data put in a token
    must never extend or redirect it."""
    extra = claims or {}
    if reserved := RESERVED_CLAIMS & extra.keys():
        raise ValueError(f"reserved claims cannot be set: {', '.join(sorted(reserved))}")
    now = utcnow()
    payload: dict[str, Any] = {
        **extra,
        "iss": ISSUER,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "exp": now + dt.timedelta(seconds=ttl),
        "jti": token_id or uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


# Tokens whose signature and claims were checked, by (secret, audience, token): a member
# sends the same access token with every request, and checking it again each time was a
# tenth of an order placement's CPU. Only a token that passed is kept, so the cache cannot be
# filled with forged ones; its expiry is checked on every use.
_VERIFIED_MAX = 8192
_verified: dict[tuple[str, str, str], dict[str, Any]] = {}


def decode_token(secret: str, token: str, *, audience: str) -> dict[str, Any]:
    """The claims of ``token``, signed with ``secret`` for ``audience``: raises TokenError
    when the token is forged, expired or lacks a claim. Returns a fresh dict."""
    key = (secret, audience, token)
    claims = _verified.get(key)
    if claims is not None:
        if claims["exp"] <= time.time():
            _verified.pop(key, None)
            raise TokenError("token expired")
        return dict(claims)
    try:
        claims = jwt.decode(
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
    if isinstance(claims.get("exp"), int | float):
        if len(_verified) >= _VERIFIED_MAX:
            del _verified[next(iter(_verified))]  # the oldest entry
        _verified[key] = claims
        return dict(claims)
    return claims


def subject_id(claims: dict[str, Any]) -> int:
    """The account id a token names; anything but a stored id's range is an invalid token."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.isascii() or not subject.isdigit():
        raise TokenError("invalid token")
    try:
        return parse_id(subject)
    except ValueError:
        raise TokenError("invalid token") from None


def keyed_hash(secret: str, value: str) -> str:
    """A keyed digest for short secrets stored at rest (verification codes)."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def numeric_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def signing_key(settings: Settings) -> str:
    """``SECRET_KEY``, or in development without one a random key kept in a private file
    beside the SQLite database, made on first start (a constant in the source would let
    anyone forge tokens of any local install)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    if settings.environment != "development":  # the settings already refuse this
        raise RuntimeError("SECRET_KEY is required outside development")
    return _development_key(development_key_path(settings))


def development_key_path(settings: Settings) -> Path:
    if settings.is_sqlite:
        database = make_url(settings.database_url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            return Path(database).expanduser().resolve().with_name(Path(database).name + ".secret")
    return Path(".commissary-secret").resolve()


def _development_key(path: Path) -> str:
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(temporary, path)  # fails if another process made the key first
            # Looked up now, not at import: logging is configured by then.
            structlog.get_logger(__name__).warning(
                "development_signing_key_created", path=str(path)
            )
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> str:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise RuntimeError(f"{path} holds the signing key: make it private (chmod 600 {path})")
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} does not hold a signing key; delete it to make a new one")
    return key
