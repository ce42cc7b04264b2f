"""HTTP endpoints of accounts and sign-in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, Query, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from commissary.core.deps import ClientAddress, RuntimeDep, SessionDep
from commissary.core.ids import IdPath
from commissary.core.listing import ListQuery, Page, list_query
from commissary.users import auth_service as auth
from commissary.users import cookies, referrals, service
from commissary.users import repository as repo
from commissary.users.dependencies import AdminUser, CurrentUser
from commissary.users.schemas import (
    EmailIn,
    LoginIn,
    MeUpdate,
    ReferralPage,
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
COOKIE_ROUTE: dict[int | str, dict[str, Any]] = {
    **REFUSED,
    403: {
        "description": "The refresh cookie was sent without the `X-Requested-With` header, "
        "or from another site (`code`: `csrf_refused`)."
    },
}
RefreshCookie = Annotated[
    str | None,
    Cookie(
        alias=cookies.COOKIE_NAME,
        description="The refresh token set by a login with `refresh_cookie`.",
        max_length=2048,
    ),
]
users_router = APIRouter(prefix="/users", tags=["users"])


def _cookie_token(
    body: RefreshIn | None, cookie: str | None, request: Request, runtime: RuntimeDep
) -> str | None:
    """The refresh token from the body, else from the cookie once the request is shown to
    come from our own site; None when neither carries one."""
    if body is not None:
        return None
    if cookie is None:
        raise auth.BadRefreshToken("send `refresh_token` in the body, or the refresh cookie")
    cookies.check_same_site(request, runtime.settings)
    return cookie


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
async def login(
    body: LoginIn,
    session: SessionDep,
    client: ClientAddress,
    response: Response,
    runtime: RuntimeDep,
) -> TokenPair:
    """Sign in. With `refresh_cookie`, the refresh token is set in an HttpOnly cookie and
    left out of the answer."""
    pair = await auth.login(session, body.email, body.password, client)
    if body.refresh_cookie:
        return _into_cookie(pair, response, runtime)
    return pair


def _into_cookie(pair: TokenPair, response: Response, runtime: RuntimeDep) -> TokenPair:
    assert pair.refresh_token is not None
    cookies.set_refresh_cookie(response, pair.refresh_token, runtime.settings)
    return pair.model_copy(update={"refresh_token": None})


@auth_router.post("/token", response_model=TokenPair, responses=REFUSED)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    client: ClientAddress,
) -> TokenPair:
    """OAuth2 password flow (`username` is the e-mail), for the Authorize button of `/docs`."""
    return await auth.login(session, form.username, form.password, client)


@auth_router.post("/refresh", response_model=TokenPair, responses=COOKIE_ROUTE)
async def refresh(
    session: SessionDep,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    cookie: RefreshCookie = None,
    body: RefreshIn | None = None,
) -> TokenPair:
    """Trade a refresh token for a new pair. Each refresh token works once. Without a body,
    the refresh cookie is used (with `X-Requested-With`, from an allowed origin) and the
    new refresh token replaces it."""
    from_cookie = _cookie_token(body, cookie, request, runtime)
    if from_cookie is None:
        assert body is not None
        return await auth.refresh(session, body.refresh_token)
    return _into_cookie(await auth.refresh(session, from_cookie), response, runtime)


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=COOKIE_ROUTE)
async def logout(
    session: SessionDep,
    request: Request,
    runtime: RuntimeDep,
    cookie: RefreshCookie = None,
    body: RefreshIn | None = None,
) -> Response:
    """Revoke the refresh token's sessions: the body's token, else the refresh cookie (with
    `X-Requested-With`, from an allowed origin), which is then cleared."""
    from_cookie = _cookie_token(body, cookie, request, runtime)
    token = from_cookie if from_cookie is not None else body.refresh_token if body else ""
    await auth.logout(session, token)
    answer = Response(status_code=status.HTTP_204_NO_CONTENT)
    if from_cookie is not None:
        cookies.clear_refresh_cookie(answer)
    return answer


@users_router.get("/me", response_model=UserRead)
async def read_me(user: CurrentUser) -> object:
    """The signed-in account."""
    return user


@users_router.get("/me/referrals", response_model=ReferralPage)
async def list_my_referrals(
    user: CurrentUser,
    query: Annotated[ListQuery, Depends(list_query(referrals.REFERRAL_LIST))],
    session: SessionDep,
) -> object:
    """The members who registered with my `referral_code`, newest first: name, when they
    joined, and when they completed a first order (`converted_at`); `total` counts them
    and `converted` those who ordered. Filters: `joined_at`, `converted_at` (with `__op`
    suffixes, e.g. `converted_at__isnull=false`); `search` (name), `sort`, `limit` (≤ 100),
    `offset`."""
    items, total, converted = await referrals.list_referred(session, user.id, query)
    return {
        "items": [
            {
                "full_name": member.full_name,
                "joined_at": member.created_at,
                "converted_at": member.referral_converted_at,
            }
            for member in items
        ],
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
        "converted": converted,
    }


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


@users_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserAdminRead,
    responses={
        403: {
            "description": "Not an admin, or a restaurateur creating anything but a waiter "
            "of restaurants they own (`code`: `forbidden`, or `not_restaurant_owner` for "
            "restaurants that are not theirs)."
        }
    },
)
async def create_user(body: UserCreate, actor: CurrentUser, session: SessionDep) -> object:
    """Create an account, already verified: an admin of any role; a restaurateur a waiter
    (`role: waiter`) of restaurants they own (`restaurant_ids`)."""
    return await service.create_user(
        session, body, actor_id=actor.id, verified=True, actor_role=actor.role
    )


@users_router.get("/{user_id:int}", response_model=UserAdminRead)
async def read_user(user_id: IdPath, _: AdminUser, session: SessionDep) -> object:
    """Admin: one account."""
    return await service.get_user(session, user_id)


@users_router.put("/{user_id:int}", response_model=UserAdminRead)
async def replace_user(
    user_id: IdPath, body: UserReplace, admin: AdminUser, session: SessionDep
) -> object:
    """Admin: replace an account's editable fields; a new password or a deactivation signs
    it out everywhere."""
    return await service.replace_user(session, user_id, body, admin)


@users_router.patch("/{user_id:int}", response_model=UserAdminRead)
async def update_user(
    user_id: IdPath, body: UserUpdate, admin: AdminUser, session: SessionDep
) -> object:
    """Admin: change some of an account's fields; a new password or a deactivation signs it
    out everywhere."""
    return await service.update_user(session, user_id, body, admin)


@users_router.delete("/{user_id:int}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: IdPath, admin: AdminUser, session: SessionDep) -> Response:
    """Admin: delete an account (not one's own); its orders stay, without the link to it,
    and its ratings are withdrawn."""
    await service.delete_user(session, user_id, admin.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
