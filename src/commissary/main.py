"""The ASGI application: ``create_app()`` wires middleware, error handlers, routers and the
runtime (database, Redis, jobs) that lives as long as the process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from types import FrameType
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from commissary import __version__, tasks
from commissary.apikeys.gate import USAGE_STATE, RateLimitHeaders, gate
from commissary.apikeys.router import router as api_keys_router
from commissary.apikeys.usage import UsageRecorder
from commissary.cart.router import router as cart_router
from commissary.catalog import images
from commissary.catalog.ratings_router import router as ratings_router
from commissary.catalog.router import cache_key as catalog_cache_key
from commissary.catalog.router import router as catalog_router
from commissary.config import Settings
from commissary.core import metrics, openapi
from commissary.core.admission import AdmissionMiddleware
from commissary.core.bodylimit import BodySizeLimitMiddleware
from commissary.core.cached_reads import CachedReads
from commissary.core.errors import UnexpectedErrorMiddleware, install_error_handlers
from commissary.core.jobs import InlineDispatcher
from commissary.core.logging import configure_logging
from commissary.core.middleware import RequestContextMiddleware
from commissary.core.paths import API_PREFIX
from commissary.core.runtime import Runtime, freeze_startup_heap
from commissary.dashboard import router as dashboard
from commissary.deliveries.router import router as deliveries_router
from commissary.events.router import router as events_router
from commissary.info.router import router as info_router
from commissary.notifications.router import router as notifications_router
from commissary.ops.admin_router import router as ops_admin_router
from commissary.ops.router import router as ops_router
from commissary.orders.lane import PlacementLane
from commissary.orders.report_router import router as report_router
from commissary.orders.router import router as orders_router
from commissary.stats.router import router as stats_router
from commissary.support.router import router as support_router
from commissary.support.router import tickets_router
from commissary.users.router import auth_router, users_router
from commissary.webhooks.router import router as webhooks_router

DESCRIPTION = """
Commissary takes food orders for cafeterias, coffee-shop chains, restaurants and delivery
marketplaces. Sign in with `POST /api/v1/auth/login` (or the **Authorize** button, e-mail as
username) and send `Authorization: Bearer <access_token>`. Integrators send an API key as
`X-API-Key` instead: it reaches only the operations its scopes name. Errors are RFC 9457
problem details with a stable `code`.
"""


def _end_live_connections_on_stop(runtime: Runtime) -> None:
    """Under uvicorn, a stop signal also ends the live connections at once.

    uvicorn waits for running requests before it shuts the application down, and an event
    stream or a WebSocket never ends by itself: without this, every stop would wait for
    ``timeout_graceful_shutdown``. The signal handler uvicorn installed is kept and called."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        owner = getattr(previous, "__self__", None)
        if not callable(previous) or not type(owner).__module__.startswith("uvicorn"):
            continue  # not served by uvicorn (tests, other servers): leave signals alone

        def handler(number: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(runtime.realtime.stop)
            previous(number, frame)

        signal.signal(signum, handler)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings)
    tasks.load()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.create(settings, wake_delay=settings.job_wake_delay)
        app.state.runtime = runtime
        await runtime.realtime.start()
        _end_live_connections_on_stop(runtime)
        usage = UsageRecorder(runtime.sessionmaker, settings.api_key_usage_flush_interval)
        setattr(app.state, USAGE_STATE, usage)
        usage.start()
        freeze_startup_heap()
        periodic = None
        if isinstance(runtime.jobs, InlineDispatcher):
            periodic = asyncio.create_task(tasks.run_periodic_inline(runtime))
        try:
            yield
        finally:
            if periodic is not None:
                periodic.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await periodic
            await usage.close()
            await runtime.close()
            metrics.process_exited()

    docs = settings.api_docs
    # The documentation's order, whatever order the routers are matched in (see below).
    tags = [
        {"name": "auth", "description": "Sign-up, sign-in, tokens and e-mail verification."},
        {"name": "users", "description": "Accounts and their roles."},
        {"name": "catalog", "description": "Restaurants, categories and products: the menu."},
        {"name": "ratings", "description": "Customers' ratings of products."},
        {"name": "cart", "description": "A customer's cart, checked out into an order."},
        {"name": "orders", "description": "Placing orders, following them, the sales report."},
        {"name": "deliveries", "description": "Couriers: offers, pickup, handover, position."},
        {"name": "info", "description": "The brand and its locations, with opening hours."},
        {"name": "notifications", "description": "A member's in-app notifications."},
        {"name": "stats", "description": "The sales dashboard's figures."},
        {"name": "support", "description": "Support conversations, over REST and WebSocket."},
        {"name": "realtime", "description": "Tickets that open a WebSocket."},
        {
            "name": "events",
            "description": "The order event stream, live and resumable (WebSocket and SSE).",
        },
        {"name": "api_keys", "description": "Integrators' scoped API keys and their usage."},
        {"name": "webhooks", "description": "Integrators' URLs that receive order events."},
        {"name": "ops", "description": "Health, readiness and operations."},
    ]
    app = FastAPI(
        title="Commissary",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        generate_unique_id_function=openapi.operation_id,
        openapi_tags=tags,
        # Refuses a request with `X-API-Key` that its key may not make; nothing otherwise.
        dependencies=[Depends(gate)],
    )
    install_error_handlers(app)
    openapi.install(app)
    # The last one added is the outermost. Innermost, a cached menu read and a member's order
    # placement are answered before routing. CORS wraps the 500 handler and the admission
    # gate, so a browser can read a 500 or a 503 too; the request id and security headers
    # wrap everything.
    app.add_middleware(CachedReads, prefix=API_PREFIX, key_of=catalog_cache_key)
    app.add_middleware(RateLimitHeaders)
    # Outside the key's rate-limit headers: the lane hands every request with a key on.
    app.add_middleware(PlacementLane)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_json_bytes=settings.max_json_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(
        AdmissionMiddleware,
        limit=settings.max_concurrent_requests,
        timeout=settings.request_queue_timeout,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(RequestContextMiddleware)

    api = APIRouter(prefix=API_PREFIX)
    # Routes are matched in the order included: placement, the hot path, first.
    # `/orders/report` before `/orders/{order_id}`.
    api.include_router(report_router)
    api.include_router(orders_router)
    api.include_router(deliveries_router)
    api.include_router(auth_router)
    api.include_router(users_router)
    api.include_router(catalog_router)
    api.include_router(ratings_router)
    api.include_router(cart_router)
    api.include_router(info_router)
    api.include_router(notifications_router)
    api.include_router(stats_router)
    api.include_router(ops_admin_router)
    api.include_router(support_router)
    api.include_router(tickets_router)
    api.include_router(events_router)
    api.include_router(api_keys_router)
    api.include_router(webhooks_router)
    app.include_router(api)
    app.include_router(ops_router)
    dashboard.install(app, settings)
    app.mount(images.MEDIA_PATH, images.media_files(settings), name="media")
    return app
