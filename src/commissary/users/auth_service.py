"""Sign-in use cases: registration, e-mail verification, login, token rotation, logout."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.db import release, utcnow
from commissary.core.errors import InvalidInput, TooManyRequests, Unauthorized
from commissary.core.mail import Mail
from commissary.core.runtime import Runtime
from commissary.core.security import (
    TokenError,
    decode_token,
    encode_token,
    keyed_hash,
    numeric_code,
    same,
    subject_id,
)
from commissary.core.text import plain_text
from commissary.models import EmailVerification, RefreshToken, Role, User
from commissary.ops import audit
from commissary.users import referrals
from commissary.users import repository as repo
from commissary.users import service as users
from commissary.users.rules import fold_email
from commissary.users.schemas import RegisterIn, TokenPair, UserCreate

log = structlog.get_logger(__name__)

RESENDS_PER_HOUR = 3
RESEND_REQUESTS_PER_CLIENT = 30
ACCESS_AUDIENCE = "commissary:access"
REFRESH_AUDIENCE = "commissary:refresh"
VERIFY_AUDIENCE = "commissary:verify-email"
TOKEN_KEY_CLAIM = "tkey"  # noqa: S105 - a claim name, not a secret


class InvalidCode(InvalidInput):
    status, code, keep_changes = 400, "invalid_verification_code", True


class BadCredentials(Unauthorized):
    code = "invalid_credentials"


class BadRefreshToken(Unauthorized):
    code = "invalid_refresh_token"


class RefreshTokenReused(Unauthorized):
    """Someone replayed a rotated token: the whole family is revoked, and that must stick."""

    code, keep_changes = "refresh_token_reused", True


async def register(session: AsyncSession, data: RegisterIn, client: str) -> User:
    """Create an unverified customer, linked to the member whose ``referral_code`` it gives
    (an unknown code is a 422 and creates nothing). Each attempt costs a password hash and a
    mail, so a client address gets ``REGISTER_MAX_PER_CLIENT`` of them per window (which also
    bounds guessing referral codes)."""
    runtime = jobs.runtime_of(session)
    s = runtime.settings
    count, retry = await runtime.limiter.hit(f"register:client:{client}", s.register_client_window)
    if count > s.register_max_per_client:
        raise TooManyRequests(
            "too many registrations from this address; try again later",
            headers={"Retry-After": str(retry)},
        )
    referrer_id = None
    if data.referral_code is not None:
        referrer_id = await referrals.referrer_of(session, data.referral_code)
    create = UserCreate(**data.model_dump(exclude={"referral_code"}))
    user = await users.create_user(session, create, actor_id=None, verified=False)
    if referrer_id is not None:
        user.referred_by_id = referrer_id
        await session.flush()
    return user


async def send_verification(session: AsyncSession, user_id: int) -> None:
    """Issue a fresh code (replacing any earlier one) and mail it with a one-click link.
    Only the code's keyed hash is stored, and the code is made here, in the job: it never
    sits in a queue.

    The mail is sent inside the job's transaction: if SMTP fails, the job fails, the new
    code and the job's outbox row are rolled back, and the job is retried; once the mail
    is accepted the transaction commits, so the job (and its mail) is done once. A
    transaction that fails after the mail went out sends another mail with a new code.
    On SQLite the job holds the write lock meanwhile, for at most ``SMTP_TIMEOUT``."""
    runtime = jobs.runtime_of(session)
    user = await repo.get(session, user_id)
    if user is None or user.is_verified:
        return
    code = numeric_code()
    ttl = runtime.settings.verification_code_ttl
    row = await repo.get_verification(session, user_id)
    if row is None:
        row = EmailVerification(user_id=user_id)
        session.add(row)
    row.code_hash = keyed_hash(runtime.secret, f"{user_id}:{code}")
    row.expires_at = utcnow() + dt.timedelta(seconds=ttl)
    row.attempts = 0
    await session.flush()
    token = encode_token(
        runtime.secret,
        subject=str(user.id),
        audience=VERIFY_AUDIENCE,
        ttl=ttl,
        claims={"email": user.email},
    )
    link = f"{runtime.settings.public_url.rstrip('/')}/api/v1/auth/verify?token={token}"
    text = (
        f"Hello {user.full_name},\n\nyour Commissary verification code is {code}\n\n"
        f"or open this link to verify your e-mail address:\n{link}\n\n"
        f"The code is valid for {ttl // 3600} hours.\n"
    )
    mail = Mail(to=user.email, subject="Your Commissary verification code", text=text)
    await runtime.mailer.send(mail)


def _mark_verified(session: AsyncSession, user: User) -> None:
    if not user.is_verified:
        user.is_verified, user.verified_at, user.updated_at = True, utcnow(), utcnow()
        audit.record(
            session, actor_id=user.id, action="user.verify_email", entity="user", entity_id=user.id
        )


async def verify_code(session: AsyncSession, email: str, code: str) -> User:
    runtime = jobs.runtime_of(session)
    wrong = InvalidCode("the verification code is wrong or has expired")
    user = await repo.get_by_email(session, email)
    if user is None or user.is_verified:
        raise wrong
    row = await repo.get_verification(session, user.id)
    if row is None or row.expires_at <= utcnow():
        raise InvalidCode(
            "the verification code has expired; ask for a new one", code="verification_code_expired"
        )
    if row.attempts >= runtime.settings.verification_max_attempts:
        raise InvalidCode(
            "too many wrong codes; ask for a new one", code="verification_attempts_exhausted"
        )
    if not same(row.code_hash, keyed_hash(runtime.secret, f"{user.id}:{code}")):
        row.attempts += 1
        await session.flush()
        raise wrong
    await session.delete(row)
    _mark_verified(session, user)
    return user


async def verify_token(session: AsyncSession, token: str) -> User:
    runtime = jobs.runtime_of(session)
    try:
        claims = decode_token(runtime.secret, token, audience=VERIFY_AUDIENCE)
        user = await repo.get(session, subject_id(claims))
    except TokenError as exc:
        raise InvalidInput(
            f"verification token: {exc}", code="invalid_verification_token"
        ) from None
    if user is None or user.email != claims.get("email"):
        raise InvalidInput("verification token: no such account", code="invalid_verification_token")
    _mark_verified(session, user)
    return user


async def resend(session: AsyncSession, email: str, client: str) -> None:
    """Queue a new code if the address belongs to an unverified account; say nothing either
    way. At most ``RESENDS_PER_HOUR`` mails per address (each resend also renews the
    code's guesses), and a bounded number of requests per client address."""
    runtime = jobs.runtime_of(session)
    count, retry = await runtime.limiter.hit(f"verify:resend-client:{client}", 3600)
    if count > RESEND_REQUESTS_PER_CLIENT:
        raise TooManyRequests(
            "too many resend requests from this address", headers={"Retry-After": str(retry)}
        )
    user = await repo.get_by_email(session, email)
    if user is None or user.is_verified:
        return
    sent, _ = await runtime.limiter.hit(f"verify:resend:{user.id}", 3600)
    if sent > RESENDS_PER_HOUR:
        log.info("verification_resend_limited", user_id=user.id)
        return
    jobs.enqueue(session, "users.send_verification", user_id=user.id)


async def _throttle(runtime: Runtime, email: str, client: str) -> None:
    """Refuse a login while its client address or its account has too many recent failures.
    Successes are not counted: thirty waiters behind one restaurant's address sign in."""
    s = runtime.settings
    for key, limit, whose in (
        (f"login:fail-client:{client}", s.login_max_failures_per_client, "from this address"),
        (f"login:fail:{email}", s.login_max_failures_per_account, "for this account"),
    ):
        failures, retry = await runtime.limiter.peek(key)
        if failures >= limit:
            raise TooManyRequests(
                f"too many failed logins {whose}; try again later",
                headers={"Retry-After": str(max(retry, 1))},
            )


async def _count_failure(runtime: Runtime, email: str, client: str) -> None:
    s = runtime.settings
    await runtime.limiter.hit(f"login:fail-client:{client}", s.login_client_window)
    await runtime.limiter.hit(f"login:fail:{email}", s.login_failure_window)
    log.info("login_failed", client=client)


async def login(session: AsyncSession, email: str, password: str, client: str) -> TokenPair:
    """Check credentials under per-client and per-account failure limits. An unknown e-mail
    and a wrong password get the same answer, in the same time."""
    runtime = jobs.runtime_of(session)
    email = fold_email(email)
    await _throttle(runtime, email, client)
    try:
        plain_text(email), plain_text(password)
    except ValueError:
        await _count_failure(runtime, email, client)
        raise BadCredentials("wrong e-mail or password") from None
    found = await repo.get_by_email(session, email)
    user_id, password_hash = (found.id, found.password_hash) if found else (None, None)
    # Nothing is held open while argon2 works: no pooled connection, no SQLite lock.
    await release(session)
    ok, new_hash = await runtime.passwords.verify_and_update(password, password_hash)
    user = await repo.get(session, user_id) if ok and user_id is not None else None
    if user is None or not user.is_active:
        await _count_failure(runtime, email, client)
        raise BadCredentials("wrong e-mail or password")
    if new_hash is not None and user.password_hash == password_hash:
        # Made with older argon2 parameters: store it again with the current ones (unless
        # the password changed while this sign-in was hashing).
        user.password_hash = new_hash
    await runtime.limiter.reset(f"login:fail:{email}")
    audit.record(session, actor_id=user.id, action="user.login", entity="user", entity_id=user.id)
    return await _issue(session, runtime, user, family_id=uuid.uuid4().hex)


def access_token(runtime: Runtime, user: User, ttl: int | None = None) -> str:
    """An access token for ``user``, bound to the account's current ``token_key``."""
    return encode_token(
        runtime.secret,
        subject=str(user.id),
        audience=ACCESS_AUDIENCE,
        ttl=runtime.settings.access_token_ttl if ttl is None else ttl,
        claims={"role": user.role.value, TOKEN_KEY_CLAIM: user.token_key},
    )


async def _issue(session: AsyncSession, runtime: Runtime, user: User, family_id: str) -> TokenPair:
    s = runtime.settings
    access = access_token(runtime, user)
    jti = uuid.uuid4().hex
    refresh = encode_token(
        runtime.secret,
        subject=str(user.id),
        audience=REFRESH_AUDIENCE,
        ttl=s.refresh_token_ttl,
        claims={"fid": family_id},
        token_id=jti,
    )
    session.add(
        RefreshToken(
            jti=jti,
            family_id=family_id,
            user_id=user.id,
            expires_at=utcnow() + dt.timedelta(seconds=s.refresh_token_ttl),
        )
    )
    await session.flush()
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=s.access_token_ttl)


async def _load_refresh(session: AsyncSession, token: str) -> RefreshToken | None:
    runtime = jobs.runtime_of(session)
    try:
        claims = decode_token(runtime.secret, token, audience=REFRESH_AUDIENCE)
    except TokenError as exc:
        raise BadRefreshToken(f"refresh token: {exc}") from None
    return await repo.get_refresh_token(session, str(claims["jti"]))


async def refresh(session: AsyncSession, token: str) -> TokenPair:
    """Rotate: the presented token is spent and a new one of the same family is issued.
    A spent token presented again means it leaked: revoke the family."""
    row = await _load_refresh(session, token)
    if row is None or row.revoked_at is not None:
        raise BadRefreshToken("refresh token revoked")
    now = utcnow()
    if row.used_at is not None:
        await repo.revoke_family(session, row.family_id, now)
        audit.record(
            session,
            actor_id=row.user_id,
            action="auth.refresh_reuse",
            entity="user",
            entity_id=row.user_id,
        )
        log.warning("refresh_token_reused", user_id=row.user_id)
        raise RefreshTokenReused("refresh token already used; every session of it is revoked")
    user = await repo.get(session, row.user_id)
    if user is None or not user.is_active:
        raise BadRefreshToken("account disabled")
    row.used_at = now
    return await _issue(session, jobs.runtime_of(session), user, row.family_id)


async def logout(session: AsyncSession, token: str) -> None:
    row = await _load_refresh(session, token)
    if row is not None:
        await repo.revoke_family(session, row.family_id, utcnow())
        audit.record(
            session,
            actor_id=row.user_id,
            action="user.logout",
            entity="user",
            entity_id=row.user_id,
        )


@dataclass(frozen=True, slots=True)
class Member:
    """The signed-in account as order placement needs it, read in one lean statement (see
    ``member_from_access_token``) instead of as an ORM object."""

    id: int
    role: Role
    is_verified: bool
    full_name: str
    allergies: list[str]


def _invalid_token(detail: str) -> Unauthorized:
    return Unauthorized(detail, code="invalid_token", headers={"WWW-Authenticate": "Bearer"})


REVOKED = "access token revoked, or the account is gone or disabled"


def _check_access(claims: dict[str, Any], is_active: bool, token_key: str) -> None:
    """The token's account must be active, and the token carry its current ``token_key``
    (a new key revokes older tokens)."""
    key = claims.get(TOKEN_KEY_CLAIM)
    if not is_active or not isinstance(key, str) or not same(key, token_key):
        raise _invalid_token(REVOKED)


async def user_from_access_token(session: AsyncSession, token: str) -> User:
    """The account an access token was issued to: it must exist, and pass
    ``_check_access``."""
    claims, user_id = access_claims(jobs.runtime_of(session), token)
    user = await repo.get(session, user_id)
    if user is None:
        raise _invalid_token(REVOKED)
    _check_access(claims, user.is_active, user.token_key)
    return user


async def member_from_access_token(session: AsyncSession, token: str) -> Member:
    """As ``user_from_access_token``, for a hot path: the same checks, a lean read."""
    claims, user_id = access_claims(jobs.runtime_of(session), token)
    return member_of(claims, await repo.member_row(session, user_id))


def access_claims(runtime: Runtime, token: str) -> tuple[dict[str, Any], int]:
    """The claims of an access token and the id of the account it names: 401 for a token
    that is forged, expired, or names no possible account. The account is checked by
    ``member_of``, once read."""
    try:
        claims = decode_token(runtime.secret, token, audience=ACCESS_AUDIENCE)
        return claims, subject_id(claims)
    except TokenError as exc:
        raise _invalid_token(f"access token: {exc}") from None


def member_of(claims: dict[str, Any], row: Any | None) -> Member:
    """The member a row of ``repository.MEMBER_COLUMNS`` describes, if the token with
    ``claims`` may still act for it (``_check_access``)."""
    if row is None:
        raise _invalid_token(REVOKED)
    _check_access(claims, row.is_active, row.token_key)
    return Member(row.id, Role(row.role), row.is_verified, row.full_name, list(row.allergies))


async def key_owner(session: AsyncSession, user_id: int) -> User:
    """The owner an API key acts as (the key was checked by ``apikeys.gate``)."""
    user = await repo.get(session, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("this API key's owner is gone or disabled", code="invalid_api_key")
    return user


async def key_member(session: AsyncSession, user_id: int) -> Member:
    """As ``key_owner``, as a lean ``Member`` for a hot path."""
    row = await repo.member_row(session, user_id)
    if row is None or not row.is_active:
        raise Unauthorized("this API key's owner is gone or disabled", code="invalid_api_key")
    return Member(row.id, Role(row.role), row.is_verified, row.full_name, list(row.allergies))
