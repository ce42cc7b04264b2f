"""Who may use the deliveries endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from commissary.core.errors import Forbidden
from commissary.models import Role, User
from commissary.users.dependencies import CurrentUser, require_role


async def courier_only(user: CurrentUser) -> User:
    """Couriers act on deliveries for themselves; nobody acts for them, admins included."""
    if user.role is not Role.COURIER:
        raise Forbidden("only couriers take and deliver orders", code="courier_only")
    return user


Courier = Annotated[User, Depends(courier_only)]
# Lists: couriers see theirs, admins everyone's.
CourierOrAdmin = Annotated[User, Depends(require_role(Role.COURIER))]
