"""Account use cases: create, read, change and delete users; purge unverified accounts.
Services flush, never commit: the request or job boundary owns the transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import ratings
from commissary.core import jobs
from commissary.core.cache import invalidate_menu
from commissary.core.db import only_read, release, utcnow
from commissary.core.errors import Conflict, InvalidInput, NotFound, field_error, reject_nulls
from commissary.core.listing import ListQuery
from commissary.models import Restaurant, Role, User
from commissary.models.user import new_token_key
from commissary.ops import audit
from commissary.users import repository as repo
from commissary.users import staff
from commissary.users.rules import is_reserved_domain
from commissary.users.schemas import MeUpdate, UserCreate, UserReplace, UserUpdate

log = structlog.get_logger(__name__)

PURGE_BATCH = 500
NULLABLE = frozenset({"planet"})


class EmailTaken(Conflict):
    code = "email_taken"


async def _flush_unique(session: AsyncSession, email: str) -> None:
    """Flush, turning a lost race on the unique e-mail into the same 409 as the pre-check."""
    try:
        await session.flush()
    except IntegrityError:
        raise EmailTaken(f"an account with e-mail {email} already exists") from None


def _check_domain(session: AsyncSession, email: str) -> None:
    if is_reserved_domain(email.rpartition("@")[2]) and not (
        jobs.runtime_of(session).settings.allow_reserved_email_domains
    ):
        raise field_error(
            "email",
            "the domain is reserved for local or test use and cannot receive mail "
            "(an intranet may allow it with ALLOW_RESERVED_EMAIL_DOMAINS)",
            code="reserved_email_domain",
        )


async def _hash_new(session: AsyncSession, password: str) -> str:
    """Hash with nothing held open while argon2 works (no pooled connection, no SQLite
    write lock) when the unit of work has only read so far, as a request has; a command
    that already wrote in this transaction (the demo loader) keeps it. Loaded objects
    expire when released: callers read ids first and load again after."""
    if only_read(session):
        await release(session)
    return await jobs.runtime_of(session).passwords.hash(password)


async def _ensure_email_free(session: AsyncSession, email: str, user_id: int | None = None) -> None:
    existing = await repo.get_by_email(session, email)
    if existing is not None and existing.id != user_id:
        raise EmailTaken(f"an account with e-mail {email} already exists")


async def create_user(
    session: AsyncSession,
    data: UserCreate,
    *,
    actor_id: int | None,
    verified: bool,
    actor_role: Role | None = None,
) -> User:
    """Create an account. Self-registered accounts start unverified and are sent a code.
    ``actor_role`` (of ``actor_id``) limits what may be created: a restaurateur creates only
    waiters of restaurants they own (see ``staff``); None is the system or the operator."""
    if actor_role is not None:
        staff.check_creator(actor_role, data.role, data.restaurant_ids)
    _check_domain(session, data.email)
    password_hash = await _hash_new(session, data.password)
    actor = (actor_id, actor_role) if actor_id is not None and actor_role is not None else None
    places = await staff.restaurants(session, actor, data.role, data.restaurant_ids)
    return await _insert_user(
        session, data, password_hash, actor_id=actor_id, verified=verified, restaurants=places
    )


async def _insert_user(
    session: AsyncSession,
    data: UserCreate,
    password_hash: str,
    *,
    actor_id: int | None,
    verified: bool,
    restaurants: list[Restaurant] | None = None,
) -> User:
    await _ensure_email_free(session, data.email)
    now = utcnow()
    user = User(
        email=data.email,
        password_hash=password_hash,
        full_name=data.full_name,
        role=data.role,
        planet=data.planet,
        allergies=data.allergies,
        is_active=data.is_active,
        is_verified=verified,
        verified_at=now if verified else None,
        created_at=now,
        updated_at=now,
        restaurants=restaurants or [],
    )
    session.add(user)
    await _flush_unique(session, data.email)
    audit.record(
        session,
        actor_id=actor_id or user.id,
        action="user.create",
        entity="user",
        entity_id=user.id,
        role=user.role.value,
    )
    if not verified:
        jobs.enqueue(session, "users.send_verification", user_id=user.id)
    return user


async def get_user(session: AsyncSession, user_id: int) -> User:
    """An account with its restaurants (``restaurant_ids``) loaded."""
    user = await staff.get_with_restaurants(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", code="user_not_found")
    return user


async def list_users(session: AsyncSession, query: ListQuery) -> tuple[list[User], int]:
    return await repo.list_page(session, query)


async def _apply(session: AsyncSession, user: User, changes: dict[str, Any], actor_id: int) -> User:
    """Apply validated changes; a new ``password_hash`` (made by the caller, outside the
    transaction) or a deactivation signs the account out everywhere at once."""
    reject_nulls(changes, NULLABLE)
    fields = sorted(changes)
    await _set_restaurants(session, user, changes, actor_id)
    if "email" in changes and changes["email"] != user.email:
        _check_domain(session, changes["email"])
        await _ensure_email_free(session, changes["email"], user.id)
    if "password_hash" in changes or changes.get("is_active") is False:
        await _sign_out_everywhere(session, user)
    if changes.get("is_verified") and user.verified_at is None:
        user.verified_at = utcnow()  # the first verification; kept if un-verified later
    for name, value in changes.items():
        setattr(user, name, value)
    user.updated_at = utcnow()
    await _flush_unique(session, user.email)
    audit.record(
        session,
        actor_id=actor_id,
        action="user.update",
        entity="user",
        entity_id=user.id,
        fields=[name if name != "password_hash" else "password" for name in fields],
    )
    return user


async def _set_restaurants(
    session: AsyncSession, user: User, changes: dict[str, Any], actor_id: int
) -> None:
    """Apply ``restaurant_ids`` (an admin's change); an account that stops being a waiter
    or a developer leaves its restaurants."""
    role = changes.get("role", user.role)
    if "restaurant_ids" in changes:
        ids = changes.pop("restaurant_ids")
        user.restaurants = await staff.restaurants(session, (actor_id, Role.ADMIN), role, ids)
    elif "role" in changes and role not in staff.MEMBER_ROLES:
        user.restaurants = []


def _guard_own_admin(user: User, actor_id: int, changes: dict[str, Any]) -> None:
    if user.id == actor_id and (
        changes.get("role", Role.ADMIN) != Role.ADMIN
        or changes.get("is_active") is False
        or changes.get("is_verified") is False
    ):
        raise Conflict(
            "an admin cannot demote or deactivate their own account", code="cannot_modify_own_admin"
        )


async def _with_new_hash(session: AsyncSession, changes: dict[str, Any]) -> dict[str, Any]:
    """Swap a new ``password`` for its hash, made before the account is loaded."""
    password = changes.pop("password", None)
    if password is not None:
        changes["password_hash"] = await _hash_new(session, password)
    return changes


async def replace_user(session: AsyncSession, user_id: int, data: UserReplace, actor: User) -> User:
    actor_id = actor.id
    changes = await _with_new_hash(session, data.model_dump(exclude_none=True))
    changes.setdefault("planet", None)
    user = await get_user(session, user_id)
    _guard_own_admin(user, actor_id, changes)
    return await _apply(session, user, changes, actor_id)


async def update_user(session: AsyncSession, user_id: int, data: UserUpdate, actor: User) -> User:
    actor_id = actor.id
    changes = data.model_dump(exclude_unset=True)
    reject_nulls(changes, NULLABLE)
    changes = await _with_new_hash(session, changes)
    user = await get_user(session, user_id)
    _guard_own_admin(user, actor_id, changes)
    return await _apply(session, user, changes, actor_id)


async def update_me(session: AsyncSession, user: User, data: MeUpdate) -> User:
    """Change one's own profile; a new password needs the current one. Both argon2 runs
    happen with no transaction open, then the account is loaded again."""
    changes = data.model_dump(exclude_unset=True)
    current = changes.pop("current_password", None)
    new = changes.pop("new_password", None)
    if new is None:
        return await _apply(session, user, changes, user.id)
    user_id, old_hash = user.id, user.password_hash
    passwords = jobs.runtime_of(session).passwords
    if only_read(session):
        await release(session)
    if not await passwords.verify(current or "", old_hash):
        raise InvalidInput("current_password is wrong", code="wrong_current_password")
    changes["password_hash"] = await passwords.hash(new)
    user = await get_user(session, user_id)
    if user.password_hash != old_hash:
        raise Conflict("the password changed meanwhile; try again", code="password_changed")
    return await _apply(session, user, changes, user_id)


async def delete_user(session: AsyncSession, user_id: int, actor_id: int | None) -> None:
    """Delete an account (``actor_id`` None: the operator's command line)."""
    user = await get_user(session, user_id)
    if user.id == actor_id:
        raise Conflict("an admin cannot delete their own account", code="cannot_modify_own_admin")
    await ratings.forget_user(session, user.id)
    await repo.delete_users(session, [user.id])
    if user.role is Role.RESTAURATEUR:
        invalidate_menu(session)  # the restaurants it owned list other owner_ids now
    audit.record(session, actor_id=actor_id, action="user.delete", entity="user", entity_id=user_id)


async def _sign_out_everywhere(session: AsyncSession, user: User) -> None:
    """A new password or a deactivation ends every session: access tokens carry the old token
    key, refresh tokens are revoked."""
    user.token_key = new_token_key()
    await repo.revoke_all_of(session, user.id, utcnow())


async def ensure_admin(session: AsyncSession, email: str, password: str, full_name: str) -> User:
    """Create the admin account, or promote and reset the existing account of that e-mail."""
    data = UserCreate(email=email, password=password, full_name=full_name, role=Role.ADMIN)
    _check_domain(session, data.email)
    password_hash = await _hash_new(session, password)
    existing = await repo.get_by_email(session, data.email)
    if existing is None:
        return await _insert_user(session, data, password_hash, actor_id=None, verified=True)
    existing.role = Role.ADMIN
    existing.is_active = True
    existing.password_hash = password_hash
    await _sign_out_everywhere(session, existing)
    if not existing.is_verified:
        existing.is_verified, existing.verified_at = True, utcnow()
    existing.updated_at = utcnow()
    audit.record(
        session, actor_id=None, action="user.promote_admin", entity="user", entity_id=existing.id
    )
    return existing


async def purge_unverified_batch(session: AsyncSession) -> int:
    """Delete one batch of accounts left unverified past ``UNVERIFIED_USER_TTL`` and ask for
    another run while more remain, so each transaction stays small. Idempotent: a purged
    account is gone, a second run finds nothing."""
    ttl = jobs.runtime_of(session).settings.unverified_user_ttl
    cutoff = utcnow() - dt.timedelta(seconds=ttl)
    ids = await repo.unverified_ids_older_than(session, cutoff, PURGE_BATCH)
    if not ids:
        return 0
    deleted = await repo.delete_unverified(session, ids, cutoff)
    if deleted:
        invalidate_menu(session)  # a purged restaurateur leaves its restaurants' owner_ids
    audit.record(
        session, actor_id=None, action="user.purge_unverified", entity="user", ids=list(ids)
    )
    log.info("unverified_users_purged", count=deleted, cutoff=cutoff.isoformat())
    if len(ids) == PURGE_BATCH:
        jobs.enqueue(session, "users.purge_unverified")
    return deleted
