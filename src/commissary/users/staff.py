"""The restaurants a member belongs to (``restaurant_staff``): who may set them, and checking
them.

Waiters serve their restaurants; developers (integrators) are granted theirs, whose orders
their keys and webhooks then follow. An admin sets any restaurants on any waiter or
developer; a restaurateur creates waiters only for restaurants they own (see also
``catalog.staff`` for an owner's own waiters). Other roles have no restaurants:
``restaurant_ids`` on them is refused."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commissary.core.errors import Forbidden, field_error
from commissary.models import Restaurant, Role, User, restaurant_owner

#: The roles that belong to restaurants.
MEMBER_ROLES = frozenset({Role.WAITER, Role.DEVELOPER})


async def restaurants(
    session: AsyncSession,
    actor: tuple[int, Role] | None,
    role: Role,
    restaurant_ids: Sequence[int] | None,
) -> list[Restaurant]:
    """The restaurants ``restaurant_ids`` for an account of ``role``, checked: each exists,
    only a waiter has any, and a restaurateur names only restaurants they own. ``actor`` is
    the id and role of who sets them (None: the operator's command line)."""
    if not restaurant_ids:
        return []
    if role not in MEMBER_ROLES:
        raise field_error(
            "restaurant_ids",
            f"only waiters and developers belong to restaurants, not a {role.value}",
            code="restaurant_ids_not_allowed",
        )
    found = list(
        (
            await session.scalars(
                select(Restaurant).where(Restaurant.id.in_(restaurant_ids)).order_by(Restaurant.id)
            )
        ).all()
    )
    missing = sorted(set(restaurant_ids) - {r.id for r in found})
    if missing:
        raise field_error(
            "restaurant_ids", f"restaurants {missing} do not exist", code="unknown_restaurant"
        )
    if actor is not None and actor[1] is not Role.ADMIN:
        owned = set(
            (
                await session.scalars(
                    select(restaurant_owner.c.restaurant_id).where(
                        restaurant_owner.c.user_id == actor[0]
                    )
                )
            ).all()
        )
        foreign = sorted(set(restaurant_ids) - owned)
        if foreign:
            raise Forbidden(f"restaurants {foreign} are not yours", code="not_restaurant_owner")
    return found


def check_creator(actor_role: Role, role: Role, restaurant_ids: Sequence[int] | None) -> None:
    """An admin creates any account; a restaurateur only waiters of their restaurants."""
    if actor_role is Role.ADMIN:
        return
    if actor_role is not Role.RESTAURATEUR or role is not Role.WAITER or not restaurant_ids:
        raise Forbidden(
            "only an admin creates accounts; a restaurateur creates waiters with "
            "`role: waiter` and `restaurant_ids` of restaurants they own"
        )


async def get_with_restaurants(session: AsyncSession, user_id: int) -> User | None:
    """An account with its restaurants loaded (for answers that show ``restaurant_ids``)."""
    stmt = (
        select(User)
        .where(User.id == user_id)
        .options(selectinload(User.restaurants))
        .execution_options(populate_existing=True)
    )
    return await session.scalar(stmt)
