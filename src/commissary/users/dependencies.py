"""Dependencies that authenticate the caller and check the role."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

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


async def current_user(session: SessionDep, token: BearerToken) -> User:
    return await _authenticate(session, token)


async def statement_user(session: StatementSessionDep, token: BearerToken) -> Member:
    """The caller as a lean ``Member``, read in the request's single-statement session (see
    ``deps.get_statement_session``)."""
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
