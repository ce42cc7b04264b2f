"""Dependencies that authenticate the caller and check the role."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.apikeys.scopes import principal
from commissary.core.deps import SessionDep, StatementSessionDep
from commissary.core.errors import Forbidden, Unauthorized
from commissary.models import Role, User
from commissary.users import auth_service
from commissary.users.auth_service import Member

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


BearerToken = Annotated[str | None, Depends(oauth2_scheme)]


async def _authenticate(session: AsyncSession, token: str | None) -> User:
    if not token:
        raise _not_signed_in()
    return await auth_service.user_from_access_token(session, token)


def _not_signed_in() -> Unauthorized:
    return Unauthorized(
        "sign in first: send `Authorization: Bearer <access token>`",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def current_user(request: Request, session: SessionDep, token: BearerToken) -> User:
    """The signed-in member, or the owner of the API key the gate let in (``apikeys.gate``):
    the owner's role then decides, as for a signed-in request."""
    key = principal(request.scope)
    if key is not None:
        return await auth_service.key_owner(session, key.owner_id)
    return await _authenticate(session, token)


async def statement_user(
    request: Request, session: StatementSessionDep, token: BearerToken
) -> Member:
    """The caller as a lean ``Member``, read in the request's single-statement session (see
    ``deps.get_statement_session``)."""
    key = principal(request.scope)
    if key is not None:
        return await auth_service.key_member(session, key.owner_id)
    if not token:
        raise _not_signed_in()
    return await auth_service.member_from_access_token(session, token)


CurrentUser = Annotated[User, Depends(current_user)]
StatementUser = Annotated[Member, Depends(statement_user)]


def require_role(*roles: Role) -> Callable[[User], Coroutine[Any, Any, User]]:
    allowed = frozenset(roles) | {Role.ADMIN}

    async def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise Forbidden(f"this needs one of the roles: {', '.join(sorted(allowed))}")
        return user

    return check


AdminUser = Annotated[User, Depends(require_role(Role.ADMIN))]
