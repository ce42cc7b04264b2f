"""A restaurant's waiters, managed by its owners (and admins) without admin rights."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import service
from commissary.core.errors import Forbidden, InvalidInput, NotFound
from commissary.models import Role, User, restaurant_staff
from commissary.ops import audit


async def _ensure_owner(session: AsyncSession, user: User, restaurant_id: int) -> None:
    await service.get_restaurant(session, restaurant_id)  # 404 for an unknown restaurant
    if not await service.owns_restaurant(session, user, restaurant_id):
        raise Forbidden(
            f"only an admin or an owner of restaurant {restaurant_id} manages its waiters",
            code="not_restaurant_owner",
        )


async def list_waiters(session: AsyncSession, user: User, restaurant_id: int) -> Sequence[User]:
    """The restaurant's waiters, by id."""
    await _ensure_owner(session, user, restaurant_id)
    stmt = (
        select(User)
        .join(restaurant_staff, restaurant_staff.c.user_id == User.id)
        .where(restaurant_staff.c.restaurant_id == restaurant_id)
        .order_by(User.id)
    )
    return (await session.scalars(stmt)).all()


async def add_waiter(
    session: AsyncSession, user: User, restaurant_id: int, user_id: int
) -> Sequence[User]:
    """Make the account ``user_id`` (a waiter) a waiter of the restaurant; idempotent."""
    actor_id = user.id
    await _ensure_owner(session, user, restaurant_id)
    waiter = await session.get(User, user_id)
    if waiter is None:
        raise NotFound(f"user {user_id} not found", code="user_not_found")
    if waiter.role is not Role.WAITER:
        raise InvalidInput(
            f"user {user_id} is a {waiter.role.value}, not a waiter", code="not_a_waiter"
        )
    present = await session.scalar(
        select(restaurant_staff.c.user_id).where(
            restaurant_staff.c.restaurant_id == restaurant_id,
            restaurant_staff.c.user_id == user_id,
        )
    )
    if present is None:
        await session.execute(
            insert(restaurant_staff).values(restaurant_id=restaurant_id, user_id=user_id)
        )
        audit.record(
            session,
            actor_id=actor_id,
            action="restaurant.waiter_add",
            entity="restaurant",
            entity_id=restaurant_id,
            user_id=user_id,
        )
    return await list_waiters(session, user, restaurant_id)


async def remove_waiter(
    session: AsyncSession, user: User, restaurant_id: int, user_id: int
) -> None:
    """The account stops being a waiter of the restaurant; idempotent."""
    actor_id = user.id
    await _ensure_owner(session, user, restaurant_id)
    result = await session.execute(
        delete(restaurant_staff).where(
            restaurant_staff.c.restaurant_id == restaurant_id,
            restaurant_staff.c.user_id == user_id,
        )
    )
    if result.rowcount:  # type: ignore[attr-defined]
        audit.record(
            session,
            actor_id=actor_id,
            action="restaurant.waiter_remove",
            entity="restaurant",
            entity_id=restaurant_id,
            user_id=user_id,
        )
