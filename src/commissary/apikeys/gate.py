"""Where a request with ``X-API-Key`` is let in or refused, before its route runs.

``gate`` is a dependency of the whole application: for a request without the header it
returns at once (no statement, no Redis call); with it, it looks the key up (one statement),
counts the request against the key's rate limit and quota, and lets it reach only a route
that declares one of the key's scopes (``scopes.require_scope``). ``RateLimitHeaders`` adds
the ``RateLimit-*`` headers the gate decided to every answer of a key request."""

from __future__ import annotations

from fastapi import WebSocketException, status
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commissary.apikeys import limits, service
from commissary.apikeys import repository as repo
from commissary.apikeys.scopes import HEADER, declared_scope, raw_key, set_principal
from commissary.apikeys.usage import UsageRecorder
from commissary.core.db import utcnow
from commissary.core.errors import Forbidden, TooManyRequests, Unauthorized
from commissary.core.runtime import Runtime

_HEADERS = "commissary.api_key_headers"
USAGE_STATE = "api_key_usage"


class AmbiguousCredentials(Unauthorized):
    """Both a bearer token and a key: which one should decide is the client's to say."""

    code = "ambiguous_credentials"


def recorder_of(connection: HTTPConnection) -> UsageRecorder:
    recorder: UsageRecorder = getattr(connection.app.state, USAGE_STATE)
    return recorder


async def usage_recorder(connection: HTTPConnection) -> UsageRecorder:
    """Async on purpose: a plain ``def`` dependency costs a thread-pool hop per request."""
    return recorder_of(connection)


async def gate(connection: HTTPConnection) -> None:
    scope = connection.scope
    raw = raw_key(scope)
    if raw is None:
        return
    if scope["type"] == "websocket":
        raise WebSocketException(
            status.WS_1008_POLICY_VIOLATION, "API keys are not accepted on WebSockets"
        )
    if any(name == b"authorization" for name, _ in scope["headers"]):
        raise AmbiguousCredentials(
            f"send either `Authorization` or `{HEADER}`, not both",
        )
    if not service.well_formed(raw):
        raise service.InvalidApiKey("unknown API key")
    runtime: Runtime = connection.app.state.runtime
    secret_hash = service.hash_secret(raw)
    async with runtime.statement_sessionmaker() as session:
        row = await repo.credentials(session, secret_hash)
    key = service.check_credentials(row)
    assert row is not None
    now = utcnow()
    verdict = await limits.count(
        runtime.limiter, key.key_id, row.rate_limit_per_minute, row.daily_quota, now
    )
    recorder_of(connection).record(
        key.key_id, secret_hash, now, refused=verdict.refused is not None
    )
    holder: dict[str, str] | None = scope.get(_HEADERS)
    if holder is not None:
        holder.update(verdict.headers)
    if verdict.refused == "rate_limited":
        raise TooManyRequests(
            f"this key's limit of {row.rate_limit_per_minute} requests per minute is spent",
            headers=verdict.headers,
        )
    if verdict.refused is not None:
        raise TooManyRequests(
            f"this key's quota of {row.daily_quota} requests for today (UTC) is spent",
            code=verdict.refused,
            headers=verdict.headers,
        )
    needed = declared_scope(scope.get("route"))
    if needed is None:
        raise Forbidden(
            "API keys are not accepted here; sign in instead",
            code="api_key_not_allowed",
            headers=verdict.headers,
        )
    if needed not in key.scopes:
        raise Forbidden(
            f"this API key lacks the scope `{needed}`",
            code="insufficient_scope",
            headers=verdict.headers,
            extra={"scope": needed.value},
        )
    set_principal(scope, key)


class RateLimitHeaders:
    """Adds the gate's ``RateLimit-*`` headers to the answer of a key request, whatever
    produced it (the route or an error handler)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or raw_key(scope) is None:
            await self.app(scope, receive, send)
            return
        holder: dict[str, str] = {}
        scope[_HEADERS] = holder

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start" and holder:
                headers = MutableHeaders(scope=message)
                for name, value in holder.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_limits)
