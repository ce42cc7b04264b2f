"""Who opens a live connection (WebSocket or event stream): a single-use ticket or a bearer
token, bound to the account's current sign-in; and whether a browser's Origin may."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocket

from commissary.core.errors import Unauthorized
from commissary.core.realtime import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, Closing
from commissary.core.runtime import Runtime
from commissary.core.security import same
from commissary.models import User
from commissary.users import auth_service
from commissary.users import repository as users_repo


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Browsers send `Origin`: it must be one of ``CORS_ORIGINS`` or the API's own host.
    Other clients send none."""
    if origin is None:
        return True
    return origin in allowed or (host is not None and urlsplit(origin).netloc == host)


async def open_socket(runtime: Runtime, websocket: WebSocket) -> tuple[User, str]:
    """Who opens this WebSocket: its Origin checked (4403), then its ticket or bearer token
    (4401), as :func:`authenticate`."""
    if not origin_allowed(
        websocket.headers.get("origin"),
        websocket.headers.get("host"),
        runtime.settings.cors_origins,
    ):
        raise Closing(CLOSE_FORBIDDEN, "origin not allowed")
    ticket = websocket.query_params.get("ticket")
    return await authenticate(runtime, ticket, websocket.headers.get("authorization"))


async def authenticate(
    runtime: Runtime, ticket: str | None, authorization: str | None
) -> tuple[User, str]:
    """The member and the token key the connection is bound to, from a single-use ticket or
    a bearer token; anything else closes the socket with 4401."""
    async with runtime.sessionmaker() as session:
        if ticket is not None:
            subject = await runtime.tickets.redeem(ticket)
            if subject is None:
                raise Closing(CLOSE_UNAUTHORIZED, "ticket unknown, used or expired")
            user_id, _, key = subject.partition(":")
            return await member(session, int(user_id), key), key
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Closing(CLOSE_UNAUTHORIZED, "give ?ticket= or Authorization: Bearer")
        try:
            user = await auth_service.user_from_access_token(session, token.strip())
        except Unauthorized as exc:
            raise Closing(CLOSE_UNAUTHORIZED, exc.detail[:100]) from None
        return user, user.token_key


async def member(session: AsyncSession, user_id: int, key: str) -> User:
    """The account, if it is active and its token key is still the one bound at connect (a
    password change or sign-out everywhere revokes the socket too)."""
    user = await users_repo.get(session, user_id)
    if user is None or not user.is_active or not same(user.token_key, key):
        raise Closing(CLOSE_UNAUTHORIZED, "token revoked, or the account is disabled")
    return user
