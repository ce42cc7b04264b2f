"""Pure-ASGI middleware around every request: request id, security headers, access log and
request metrics."""

from __future__ import annotations

import re
import secrets
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commissary.core import metrics

log = structlog.get_logger("commissary.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc load their bundles from jsDelivr and run a small inline bootstrap.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
# The dashboard runs its own scripts and styles only: no inline code, no other origin.
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DASHBOARD_PATH = "/dashboard"


# What every answer carries, by kind of page; `Cache-Control: no-store` is added to the
# answers of a signed-in request and of the auth routes. These replace any the app set.
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_NO_STORE = ((b"cache-control", b"no-store"),)

Raw = tuple[tuple[bytes, bytes], ...]
Policy = tuple[Raw, frozenset[bytes]]  # the headers, and their names


def _policies(csp: str) -> tuple[Policy, Policy]:
    """The headers of a page under ``csp``: for anyone, and for a signed-in request."""
    anyone = (*_ALWAYS, (b"content-security-policy", csp.encode()))
    signed_in = (*anyone, *_NO_STORE)
    return (anyone, frozenset(dict(anyone))), (signed_in, frozenset(dict(signed_in)))


_API, _DOCS, _DASHBOARD = _policies(API_CSP), _policies(DOCS_CSP), _policies(DASHBOARD_CSP)


def security_headers(scope: Scope) -> Policy:
    """The security headers of the answer to the HTTP request ``scope``."""
    path: str = scope["path"]
    policies = (
        _DOCS
        if path.startswith(DOCS_PATHS)
        else _DASHBOARD
        if path.startswith(DASHBOARD_PATH)
        else _API
    )
    authenticated = any(k in (b"authorization", b"x-api-key") for k, _ in scope["headers"])
    return policies[authenticated or path.startswith("/api/v1/auth/")]


# The access log's status of a request whose client went away before it was answered.
CLIENT_CLOSED = 499


class RequestContextMiddleware:
    """The envelope of every request, outermost: binds a request id to every log line of the
    request and echoes it as ``X-Request-ID``; adds the security headers to every HTTP
    answer; writes the access line and counts the request in the metrics. One layer, as it
    sits on the path of every request and of every message sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode() for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(16)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        # A refused WebSocket handshake's answer carries the request id only.
        headers, replaced = security_headers(scope) if kind == "http" else ((), frozenset())
        ours = [*headers, (b"x-request-id", request_id.encode())]
        started = time.perf_counter()
        status = 0
        client_left = False

        async def watch_receive() -> Message:
            nonlocal client_left
            message = await receive()
            client_left = client_left or message["type"] == "http.disconnect"
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            sent = message["type"]
            if sent in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
                # The app's own headers of these names give way; the request id is added.
                message["headers"] = [
                    header
                    for header in message.get("headers", ())
                    if header[0].lower() not in replaced
                ] + ours
            elif sent == "websocket.accept":
                status = 101  # Switching Protocols: the socket is open
            elif sent == "websocket.close" and status != 101:
                status = 403  # refused before the handshake, as the server answers it
            await send(message)

        try:
            await self.app(scope, watch_receive, send_with_headers)
        finally:
            if not status:
                # Nothing answered: the client left first (nginx's 499), or a failure.
                status = CLIENT_CLOSED if client_left else 500
            elapsed = time.perf_counter() - started
            if kind == "http":
                metrics.observe_request(scope, status, elapsed)
            log.info(
                "request",
                method=scope.get("method", "WS"),
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
