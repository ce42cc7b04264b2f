"""Pure-ASGI middleware: request id, access log and request metrics; security headers."""

from __future__ import annotations

import re
import secrets
import time

import structlog
from starlette.datastructures import MutableHeaders
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


# The access log's status of a request whose client went away before it was answered.
CLIENT_CLOSED = 499


class RequestContextMiddleware:
    """Binds a request id to every log line of the request and echoes it as ``X-Request-ID``;
    writes its access line and counts it in the metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode() for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(16)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 0
        client_left = False

        async def watch_receive() -> Message:
            nonlocal client_left
            message = await receive()
            client_left = client_left or message["type"] == "http.disconnect"
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            elif kind == "websocket.accept":
                status = 101  # Switching Protocols: the socket is open
            elif kind == "websocket.close" and status != 101:
                status = 403  # refused before the handshake, as the server answers it
            await send(message)

        try:
            await self.app(scope, watch_receive, send_with_id)
        finally:
            if not status:
                # Nothing answered: the client left first (nginx's 499), or a failure.
                status = CLIENT_CLOSED if client_left else 500
            elapsed = time.perf_counter() - started
            if scope["type"] == "http":
                metrics.observe_request(scope, status, elapsed)
            log.info(
                "request",
                method=scope.get("method", "WS"),
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        authenticated = any(k in (b"authorization", b"x-api-key") for k, _ in scope["headers"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Content-Security-Policy"] = (
                    DOCS_CSP
                    if path.startswith(DOCS_PATHS)
                    else DASHBOARD_CSP
                    if path.startswith(DASHBOARD_PATH)
                    else API_CSP
                )
                if authenticated or path.startswith("/api/v1/auth/"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
