"""HTTP endpoints of accounts and sign-in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from commissary.core.deps import ClientAddress, SessionDep
from commissary.core.ids import IdPath
from commissary.core.listing import ListQuery, Page, list_query
from commissary.users import auth_service as auth
from commissary.users import repository as repo
from commissary.users import service
from commissary.users.dependencies import AdminUser, CurrentUser
from commissary.users.schemas import (
    EmailIn,
    LoginIn,
    MeUpdate,
    RefreshIn,
    RegisterIn,
    TokenPair,
    UserAdminRead,
    UserCreate,
    UserRead,
    UserReplace,
    UserUpdate,
    VerifyIn,
)

auth_router = APIRouter(prefix="/auth", tags=["auth"])
# Refused credentials; routes behind a token get their 401 from the security scheme.
REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"description": "The e-mail and password, or the refresh token, are refused."}
}
users_router = APIRouter(prefix="/users", tags=["users"])


@auth_router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserRead)
async def register(body: RegisterIn, session: SessionDep, client: ClientAddress) -> object:
    """Create a customer account; a verification code is e-mailed once it is stored."""
    return await auth.register(session, body, client)


@auth_router.post("/verify", response_model=UserRead)
async def verify(body: VerifyIn, session: SessionDep) -> object:
    """Verify an e-mail address with the 6-digit code, or with the token of the mailed link."""
    if body.token is not None:
        return await auth.verify_token(session, body.token)
    assert body.email is not None and body.code is not None
    return await auth.verify_code(session, body.email, body.code)


@auth_router.get("/verify", response_model=UserRead)
async def verify_link(
    token: Annotated[str, Query(min_length=1, max_length=2048)], session: SessionDep
) -> object:
    """The link of the verification e-mail."""
    return await auth.verify_token(session, token)


@auth_router.post("/verify/resend", status_code=status.HTTP_202_ACCEPTED)
async def resend_verification(
    body: EmailIn, session: SessionDep, client: ClientAddress
) -> dict[str, str]:
    """Send a new code. The answer is the same whether or not the address has an account."""
    await auth.resend(session, body.email, client)
    return {"detail": "If an unverified account uses this address, a new code is on its way."}


@auth_router.post("/login", response_model=TokenPair, responses=REFUSED)
async def login(body: LoginIn, session: SessionDep, client: ClientAddress) -> TokenPair:
    return await auth.login(session, body.email, body.password, client)


@auth_router.post("/token", response_model=TokenPair, responses=REFUSED)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    client: ClientAddress,
) -> TokenPair:
    """OAuth2 password flow (`username` is the e-mail), for the Authorize button of `/docs`."""
    return await auth.login(session, form.username, form.password, client)


@auth_router.post("/refresh", response_model=TokenPair, responses=REFUSED)
async def refresh(body: RefreshIn, session: SessionDep) -> TokenPair:
    """Trade a refresh token for a new pair. Each refresh token works once."""
    return await auth.refresh(session, body.refresh_token)


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=REFUSED)
async def logout(body: RefreshIn, session: SessionDep) -> Response:
    await auth.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@users_router.get("/me", response_model=UserRead)
async def read_me(user: CurrentUser) -> object:
    return user


@users_router.patch("/me", response_model=UserRead)
async def update_me(body: MeUpdate, user: CurrentUser, session: SessionDep) -> object:
    """Change name, planet or allergies; a new password needs the current one."""
    return await service.update_me(session, user, body)


@users_router.get("", response_model=Page[UserAdminRead])
async def list_users(
    _: AdminUser,
    query: Annotated[ListQuery, Depends(list_query(repo.USER_LIST))],
    session: SessionDep,
) -> object:
    """Admin. Filters: `email`, `full_name`, `role`, `is_verified`, `is_active`, `planet`,
    `created_at` (with `__op` suffixes); `sort`, `search`, `limit` (≤ 100), `offset`."""
    items, total = await service.list_users(session, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@users_router.post("", status_code=status.HTTP_201_CREATED, response_model=UserAdminRead)
async def create_user(body: UserCreate, admin: AdminUser, session: SessionDep) -> object:
    """Admin: create an account of any role, already verified."""
    return await service.create_user(session, body, actor_id=admin.id, verified=True)


@users_router.get("/{user_id:int}", response_model=UserAdminRead)
async def read_user(user_id: IdPath, _: AdminUser, session: SessionDep) -> object:
    return await service.get_user(session, user_id)


@users_router.put("/{user_id:int}", response_model=UserAdminRead)
async def replace_user(
    user_id: IdPath, body: UserReplace, admin: AdminUser, session: SessionDep
) -> object:
    return await service.replace_user(session, user_id, body, admin)


@users_router.patch("/{user_id:int}", response_model=UserAdminRead)
async def update_user(
    user_id: IdPath, body: UserUpdate, admin: AdminUser, session: SessionDep
) -> object:
    return await service.update_user(session, user_id, body, admin)


@users_router.delete("/{user_id:int}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: IdPath, admin: AdminUser, session: SessionDep) -> Response:
    await service.delete_user(session, user_id, admin.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
