"""Domain errors that carry their HTTP status and a stable code, rendered as RFC 9457
problem details by one set of handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy import exc as sa_exc
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://commissary.dev/problems/"

# The JSON schemas of what ``problem()`` renders, for the OpenAPI document.
FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError",
    "type": "object",
    "description": "One invalid field of the request.",
    "properties": {
        "in": {"type": "string", "enum": ["body", "query", "path", "header", "cookie"]},
        "field": {"type": "string", "description": "Dotted path of the field in its part."},
        "message": {"type": "string"},
        "type": {"type": ["string", "null"], "description": "The kind of validation error."},
    },
    "required": ["in", "field", "message"],
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details. `code` is stable: branch on it, not on `detail`.",
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem."},
        "title": {"type": "string", "description": "The HTTP status phrase."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"type": "string", "description": "What is wrong, for a person."},
        "code": {"type": "string", "description": "What is wrong, for a program."},
        "instance": {"type": "string", "description": "The path of the request."},
        "errors": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/FieldError"},
            "description": "Each invalid field (validation errors only).",
        },
    },
    "required": ["type", "title", "status", "detail", "code"],
    # Some problems add members, e.g. `parameter` naming a refused query parameter.
    "additionalProperties": True,
}


class DomainError(Exception):
    """A business rule said no. Subclasses set ``status`` and ``code``.

    ``keep_changes`` asks the unit of work to commit what was flushed before raising (a
    failed verification attempt must still be counted, a reused refresh token must still
    revoke its family)."""

    status: int = 400
    code: str = "bad_request"
    keep_changes: bool = False

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class InvalidInput(DomainError):
    status, code = 422, "invalid_input"


class Unauthorized(DomainError):
    status, code = 401, "not_authenticated"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class TooManyRequests(DomainError):
    status, code = 429, "rate_limited"


def field_error(field: str, detail: str, code: str = "invalid_input") -> InvalidInput:
    """A 422 about one body field, shaped like a validation error's ``errors`` entry."""
    return InvalidInput(
        detail, code=code, extra={"errors": [{"in": "body", "field": field, "message": detail}]}
    )


def reject_nulls(changes: Mapping[str, Any], nullable: Collection[str] = ()) -> None:
    """Refuse an explicit null for a field that cannot be empty (in a PATCH or PUT body)."""
    for name, value in changes.items():
        if value is None and name not in nullable:
            raise field_error(name, f"'{name}' cannot be null")


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    # Extra members never replace the standard ones.
    body.update({k: v for k, v in (extra or {}).items() if k not in body})
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] in {"body", "query", "path", "header", "cookie"}:
            where, field = loc[0], ".".join(loc[1:])
        else:
            where, field = "body", ".".join(loc)
        out.append(
            {"in": where, "field": field, "message": err.get("msg", ""), "type": err.get("type")}
        )
    return out


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem(
        exc.status,
        exc.code,
        exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    names = ", ".join(sorted({e["field"] or e["in"] for e in errors}))
    return problem(
        422,
        "validation_failed",
        f"Invalid input: {names}",
        instance=request.url.path,
        extra={"errors": errors},
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on the request's path. The router alone names only
    the methods of the first route whose path matches."""
    path = get_route_path(request.scope)
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        regex = getattr(route, "path_regex", None)
        if route.methods and regex is not None and regex.match(path):
            methods |= route.methods
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem(
        exc.status_code, code, str(exc.detail), instance=request.url.path, headers=headers
    )


class UnexpectedErrorMiddleware:
    """Innermost middleware: an unexpected exception becomes a generic problem-details 500,
    logged with the request id, and still passes through the outer middleware (request id,
    security headers, CORS), which Starlette's own last-resort handler would skip."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unhandled_error", path=scope.get("path"), exc_info=exc)
            if started:
                raise
            await internal_error(scope.get("path"))(scope, receive, send)


RETRY_AFTER_BUSY = "1"


def retry_shortly(code: str, detail: str, instance: str | None) -> JSONResponse:
    """A 503 the client may retry after ``Retry-After`` (overload, a part away)."""
    return problem(503, code, detail, instance=instance, headers={"Retry-After": RETRY_AFTER_BUSY})


def busy(instance: str | None) -> JSONResponse:
    return retry_shortly("overloaded", "The service is busy; retry shortly.", instance)


def internal_error(instance: str | None) -> JSONResponse:
    return problem(500, "internal_error", "An unexpected error occurred.", instance=instance)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """Overload and a lost database are a 503 the client may retry, not a 500: a request
    that waited `DB_POOL_TIMEOUT` for a connection, or met a connection the server closed
    (SQLAlchemy then invalidates the pool, so the next requests reconnect)."""
    path = request.url.path
    if isinstance(exc, sa_exc.TimeoutError):
        log.warning("db_pool_exhausted", path=path)
        return busy(path)
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        log.warning("db_connection_lost", path=path)
        return retry_shortly(
            "database_unavailable", "The database is unavailable; retry shortly.", path
        )
    log.error("database_error", path=path, exc_info=exc)
    return internal_error(path)


Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]
_HANDLERS: tuple[tuple[type[Exception], Handler], ...] = (
    (sa_exc.TimeoutError, _database_error),
    (sa_exc.DBAPIError, _database_error),
    (DomainError, _domain_error),
    (RequestValidationError, _validation_error),
    (StarletteHTTPException, _http_error),
)


def install_error_handlers(app: FastAPI) -> None:
    for kind, handler in _HANDLERS:
        app.add_exception_handler(kind, handler)


async def answer_error(request: Request, exc: Exception) -> JSONResponse | None:
    """The answer the application's handlers give ``exc``, for code that runs outside the
    router (``orders.lane``); None for an unexpected error (a 500 further out)."""
    for kind, handler in _HANDLERS:
        if isinstance(exc, kind):
            return await handler(request, exc)
    return None
