"""Serving public reads through the answer cache (``core.cache``).

Two ways in, one key. :func:`serve` is what a read endpoint returns: the stored bytes on a hit,
else the answer built in a database session opened only then. :class:`CachedReads` is a pure
ASGI middleware, innermost of the stack, that answers a hit before routing, path validation
and dependencies, which cost more than the cache lookup itself; request id, security headers
and CORS still apply as it sits inside them. On a miss it hands its lookup to the endpoint, so
a miss is still one lookup.

Only reads whose answer depends on nothing but the path and the query string belong here:
nothing that depends on the caller (an allergy warning, a restaurateur's own view), since a
hit bypasses every dependency of the endpoint, authentication included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from commissary.core.cache import AnswerCache, Lookup

JSON = "application/json"
MAX_RAW_KEY = 200  # longer query strings are hashed, so a key stays small
_HANDED_OVER = "cached_reads.lookup"

KeyOf = Callable[[str, bytes], "str | None"]


@dataclass(frozen=True, slots=True)
class Fresh:
    """An answer just read from the database. ``ttl`` shortens its life in the cache below
    ``CACHE_TTL`` (an answer that depends on the clock); zero or less: not stored."""

    body: bytes
    ttl: float | None = None


Build = Callable[[AsyncSession], Awaitable[Fresh]]

_HIT = {"X-Cache": "hit"}
_MISS = {"X-Cache": "miss"}

CACHED_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "X-Cache": {
                "description": "`hit`: served from the menu cache; `miss`: read from the database.",
                "schema": {"type": "string", "enum": ["hit", "miss"]},
            }
        }
    },
    # A miss reads the database in a session of its own (no request session to infer it from).
    503: {"description": "The database is busy or unavailable; retry after `Retry-After`."},
}


def list_key(path: str, query_string: bytes) -> str:
    """A key for a list answer: its path and the raw query string (hashed when long)."""
    if len(query_string) > MAX_RAW_KEY:
        return f"{path}#{hashlib.sha256(query_string).hexdigest()}"
    return f"{path}?{query_string.decode('latin-1')}"


async def serve(request: Request, key: str, build: Build) -> Response:
    """The public answer under ``key``: the stored bytes as they are on a hit, else built by
    ``build`` in a read-only session opened only now, stored, and sent."""
    runtime = request.app.state.runtime
    cache: AnswerCache = runtime.cache
    handed: tuple[str, Lookup] | None = request.scope.get("state", {}).get(_HANDED_OVER)
    found = handed[1] if handed is not None and handed[0] == key else await cache.lookup(key)
    if found.body is not None:
        return Response(found.body, media_type=JSON, headers=_HIT)
    async with runtime.sessionmaker() as session:
        fresh = await build(session)
    if found.generation is not None:
        ttl: float = runtime.settings.cache_ttl
        if fresh.ttl is not None:
            ttl = min(ttl, fresh.ttl)
        if ttl > 0:
            await cache.store(key, found.generation, fresh.body, ttl)
    return Response(fresh.body, media_type=JSON, headers=_MISS)


class CachedReads:
    """Answers ``GET <prefix><path>`` from the cache when ``key_of(path, query_string)`` names
    the key its endpoint stores under; everything else goes on to the application."""

    def __init__(self, app: ASGIApp, prefix: str, key_of: KeyOf) -> None:
        self.app = app
        self.prefix = prefix
        self.key_of = key_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        found = await scope["app"].state.runtime.cache.lookup(key)
        if found.body is None:
            scope.setdefault("state", {})[_HANDED_OVER] = (key, found)
            await self.app(scope, receive, send)
            return
        headers = [
            (b"content-length", str(len(found.body)).encode()),
            (b"content-type", JSON.encode()),
            (b"x-cache", b"hit"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": found.body})

    def _key(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        if any(name == b"x-api-key" for name, _ in scope["headers"]):
            return None  # a key request is counted and checked first (``apikeys.gate``)
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if not path.startswith(self.prefix):
            return None
        return self.key_of(path[len(self.prefix) :], scope["query_string"])
