"""Prometheus metrics of the HTTP layer and the realtime hub.

The request counter and latency histogram are labelled by route *template*
(``/api/v1/orders/{order_id}``), never the raw path, so their cardinality stays the number
of routes. ``RequestContextMiddleware`` calls :func:`observe_request` once per request: a
dictionary lookup for the label set and two in-memory updates, no I/O.

Several api processes (``commissary serve --workers N``) share one directory of
memory-mapped files named by ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode), and whichever process answers ``/metrics`` reads them all; ``serve``
sets it up. With one process the metrics stay in memory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import Scope

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"  # no route: a 404 (raw paths would let anyone add label values)
MAX_SHAPES = 512

REQUESTS = Counter(
    "commissary_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "commissary_http_request_duration_seconds",
    "Time from the request's arrival to its answer's last byte, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WEBSOCKETS = Gauge(
    "commissary_websocket_connections",
    "Open WebSocket connections of the realtime hub.",
    multiprocess_mode="livesum",
)

_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_DIGITS = re.compile(r"/[0-9]+(?=/|$)")


@dataclass
class _Templates:
    """The full path templates of an application's routes, found once. A route that
    answered names its template by identity; a path answered without routing (a cached menu
    read) is matched against the templates once per *shape* (digits as placeholders), so
    ``/api/v1/products/7`` and ``/8`` cost one match between them."""

    by_route: dict[int, str] = field(default_factory=dict)
    patterns: list[tuple[Any, frozenset[str], str]] = field(default_factory=list)
    shapes: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def of(cls, app: Any) -> _Templates:
        found: _Templates | None = getattr(app.state, "metrics_templates", None)
        if found is None:
            found = cls()
            for context in iter_route_contexts(app.router.routes):
                template = context.path_format
                if not template:
                    continue
                found.by_route.setdefault(id(context.original_route), template)
                regex = getattr(context, "path_regex", None)
                if regex is not None:
                    found.patterns.append((regex, frozenset(context.methods or ()), template))
            app.state.metrics_templates = found
        return found

    def match(self, method: str, path: str) -> str:
        shape = (method, _DIGITS.sub("/0", path))
        template = self.shapes.get(shape)
        if template is not None:
            return template
        template = next(
            (t for regex, methods, t in self.patterns if method in methods and regex.match(path)),
            UNMATCHED,
        )
        if template != UNMATCHED and len(self.shapes) < MAX_SHAPES:
            self.shapes[shape] = template
        return template


def route_of(scope: Scope) -> str:
    """The template of the route that answered, or of the route the path matches."""
    app = scope.get("app")
    if app is None:
        return UNMATCHED
    templates = _Templates.of(app)
    route = scope.get("route")
    if route is not None:
        template = templates.by_route.get(id(route))
        if template is not None:
            return template
        mounted = getattr(route, "path", None)  # a mount (`/media`): its prefix only
        return str(mounted) if mounted is not None else UNMATCHED
    return templates.match(scope.get("method", "GET"), scope["path"])


def observe_request(scope: Scope, status: int, seconds: float) -> None:
    method: str = scope.get("method", "GET")
    route = route_of(scope)
    key = (method, route, status)
    children = _children.get(key)
    if children is None:
        children = (
            REQUESTS.labels(method, route, str(status)),
            LATENCY.labels(method, route),
        )
        _children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def is_multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def exposition(*extra: Any) -> bytes:
    """The text format of every metric: this process's (or, in multiprocess mode, every
    process's) plus ``extra`` collectors figured at scrape time."""
    scraped = CollectorRegistry()
    for collector in extra:
        scraped.register(collector)
    if is_multiprocess():
        multiprocess.MultiProcessCollector(scraped)  # type: ignore[no-untyped-call]
        return generate_latest(scraped)
    return generate_latest(REGISTRY) + generate_latest(scraped)


def process_exited() -> None:
    """Drop this process's live gauges from the shared files (multiprocess mode)."""
    if is_multiprocess():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
