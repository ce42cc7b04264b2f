"""What an API key may reach, declared by the routes themselves.

A route that a key may call says so with ``require_scope(KeyScope.X)`` (in its
``dependencies`` or as a parameter); every other route refuses a key with 403
``api_key_not_allowed`` (see ``apikeys.gate``). The key then acts as its owner, so the
owner's role still decides what the route lets it do."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, Security
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader
from starlette.types import Scope

HEADER = "X-API-Key"
_RAW_HEADER = HEADER.lower().encode()
_PRINCIPAL = "commissary.api_key"


class KeyScope(enum.StrEnum):
    CATALOG_READ = "catalog:read"
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"
    WEBHOOKS_WRITE = "webhooks:write"


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """The key a request was authenticated with: the owner it acts as, and its scopes."""

    key_id: int
    owner_id: int
    scopes: frozenset[KeyScope]


def raw_key(scope: Scope) -> str | None:
    """The ``X-API-Key`` header of a request, if it sent one (read from the raw headers:
    every request passes here)."""
    for name, value in scope["headers"]:
        if name == _RAW_HEADER:
            return str(value.decode("latin-1"))
    return None


def principal(scope: Scope) -> KeyPrincipal | None:
    """The key this request was authenticated with (by the gate), or None."""
    found: KeyPrincipal | None = scope.get(_PRINCIPAL)
    return found


def set_principal(scope: Scope, key: KeyPrincipal) -> None:
    scope[_PRINCIPAL] = key


api_key_header = APIKeyHeader(
    name=HEADER,
    scheme_name="ApiKey",
    description="An integrator's API key (`cmk_live_…`), created at `POST /api/v1/api-keys`. "
    "It acts as its owner, only on the operations its scopes name.",
    auto_error=False,
)


def require_scope(scope: KeyScope | str, *, public: bool = False) -> Any:
    """A dependency marking a route as reachable with an API key holding ``scope`` (e.g.
    ``dependencies=[require_scope(KeyScope.WEBHOOKS_WRITE)]``). The gate enforces it before
    the route runs; here it also documents the ``ApiKey`` scheme (and, for a ``public``
    route, that sending no credentials at all is fine). An unknown scope is a ValueError."""
    return _require_scope(KeyScope(scope), public)


@cache
def _require_scope(scope: KeyScope, public: bool) -> Any:

    async def key_scope(_: Annotated[str | None, Security(api_key_header)]) -> None:
        return None

    marker: Any = key_scope
    marker.api_key_scope = scope
    # Read by ``core.openapi``: what a key adds to the operation's documented answers.
    marker.error_statuses = (401, 403, 429)
    marker.optional_auth = public
    return Depends(key_scope)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


_UNKNOWN = object()


def declared_scope(route: Any) -> KeyScope | None:
    """The scope ``route`` declares with ``require_scope``, or None (keys refused). Found
    once per route and kept on it."""
    if route is None:
        return None
    found: Any = getattr(route, "_api_key_scope", _UNKNOWN)
    if found is _UNKNOWN:
        dependant = getattr(route, "dependant", None)
        calls = list(_calls(dependant)) if dependant is not None else []
        found = next((c.api_key_scope for c in calls if hasattr(c, "api_key_scope")), None)
        route._api_key_scope = found
    result: KeyScope | None = found
    return result
