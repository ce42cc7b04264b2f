"""Account use cases: create, read, change and delete users; purge unverified accounts.
Services flush, never commit: the request or job boundary owns the transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.cache import invalidate_menu
from commissary.core.db import utcnow
from commissary.core.errors import Conflict, InvalidInput, NotFound, reject_nulls
from commissary.core.listing import ListQuery
from commissary.core.security import hash_password, verify_password
from commissary.models import Role, User
from commissary.ops import audit
from commissary.users import repository as repo
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
) -> User:
    """Create an account. Self-registered accounts start unverified and are sent a code."""
    # Hash before the first query: no connection or SQLite lock is held while argon2 works.
    password_hash = await hash_password(data.password)
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
    user = await repo.get(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", code="user_not_found")
    return user


async def list_users(session: AsyncSession, query: ListQuery) -> tuple[list[User], int]:
    return await repo.list_page(session, query)


async def _apply(session: AsyncSession, user: User, changes: dict[str, Any], actor_id: int) -> User:
    reject_nulls(changes, NULLABLE)
    fields = sorted(changes)
    if "email" in changes and changes["email"] != user.email:
        await _ensure_email_free(session, changes["email"], user.id)
    if "password" in changes:
        user.password_hash = await hash_password(changes.pop("password"))
        await repo.revoke_all_of(session, user.id, utcnow())
    if changes.get("is_verified") and user.verified_at is None:
        user.verified_at = utcnow()  # the first verification; kept if un-verified later
    if changes.get("is_active") is False:
        await repo.revoke_all_of(session, user.id, utcnow())
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
        fields=fields,
    )
    return user


def _guard_own_admin(user: User, actor: User, changes: dict[str, Any]) -> None:
    if user.id == actor.id and (
        changes.get("role", Role.ADMIN) != Role.ADMIN
        or changes.get("is_active") is False
        or changes.get("is_verified") is False
    ):
        raise Conflict(
            "an admin cannot demote or deactivate their own account", code="cannot_modify_own_admin"
        )


async def replace_user(session: AsyncSession, user_id: int, data: UserReplace, actor: User) -> User:
    user = await get_user(session, user_id)
    changes = data.model_dump(exclude_none=True)
    changes.setdefault("planet", None)
    _guard_own_admin(user, actor, changes)
    return await _apply(session, user, changes, actor.id)


async def update_user(session: AsyncSession, user_id: int, data: UserUpdate, actor: User) -> User:
    user = await get_user(session, user_id)
    changes = data.model_dump(exclude_unset=True)
    reject_nulls(changes, NULLABLE)
    _guard_own_admin(user, actor, changes)
    return await _apply(session, user, changes, actor.id)


async def update_me(session: AsyncSession, user: User, data: MeUpdate) -> User:
    changes = data.model_dump(exclude_unset=True)
    current = changes.pop("current_password", None)
    new = changes.pop("new_password", None)
    if new is not None:
        if not await verify_password(current or "", user.password_hash):
            raise InvalidInput("current_password is wrong", code="wrong_current_password")
        changes["password"] = new
    return await _apply(session, user, changes, user.id)


async def delete_user(session: AsyncSession, user_id: int, actor_id: int | None) -> None:
    """Delete an account (``actor_id`` None: the operator's command line)."""
    user = await get_user(session, user_id)
    if user.id == actor_id:
        raise Conflict("an admin cannot delete their own account", code="cannot_modify_own_admin")
    await repo.delete_users(session, [user.id])
    if user.role is Role.RESTAURATEUR:
        invalidate_menu(session)  # the restaurants it owned list other owner_ids now
    audit.record(session, actor_id=actor_id, action="user.delete", entity="user", entity_id=user_id)


async def ensure_admin(session: AsyncSession, email: str, password: str, full_name: str) -> User:
    """Create the admin account, or promote and reset the existing account of that e-mail."""
    existing = await repo.get_by_email(session, email)
    if existing is None:
        data = UserCreate(email=email, password=password, full_name=full_name, role=Role.ADMIN)
        return await create_user(session, data, actor_id=None, verified=True)
    existing.role = Role.ADMIN
    existing.is_active = True
    existing.password_hash = await hash_password(password)
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
