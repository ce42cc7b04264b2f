"""HTTP endpoints of a restaurant's waiters, for its owners and admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from commissary.catalog import staff as service
from commissary.catalog.schemas import WaiterRead
from commissary.core.deps import SessionDep
from commissary.core.ids import IdPath
from commissary.models import Role, User
from commissary.users.dependencies import require_role

router = APIRouter(prefix="/restaurants/{restaurant_id}/waiters", tags=["catalog"])
Owner = Annotated[User, Depends(require_role(Role.RESTAURATEUR))]
NOT_OWNER: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not an admin or an owner of the restaurant."}
}


@router.get("", response_model=list[WaiterRead], responses=NOT_OWNER)
async def list_waiters(restaurant_id: IdPath, user: Owner, session: SessionDep) -> object:
    """Owners and admins: the restaurant's waiters, by id."""
    return await service.list_waiters(session, user, restaurant_id)


@router.put(
    "/{user_id}",
    response_model=list[WaiterRead],
    responses={
        **NOT_OWNER,
        404: {"description": "No such restaurant or user."},
        422: {"description": "The account is not a waiter (`code`: `not_a_waiter`)."},
    },
)
async def add_waiter(
    restaurant_id: IdPath, user_id: IdPath, user: Owner, session: SessionDep
) -> object:
    """Owners and admins: make a waiter account one of the restaurant's waiters (again is
    a no-op); answers the restaurant's waiters."""
    return await service.add_waiter(session, user, restaurant_id, user_id)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_OWNER, 404: {"description": "No such restaurant."}},
)
async def remove_waiter(
    restaurant_id: IdPath, user_id: IdPath, user: Owner, session: SessionDep
) -> Response:
    """Owners and admins: the account stops being a waiter of the restaurant (no-op if it
    was not)."""
    await service.remove_waiter(session, user, restaurant_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
