"""Liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from commissary.core import metrics
from commissary.core.deps import RuntimeDep, SessionDep
from commissary.core.runtime import Runtime
from commissary.ops import queues
from commissary.ops.metrics import MetricsReader, SnapshotCollector

PROBE_TIMEOUT = 3.0

router = APIRouter(tags=["ops"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def _check(probe: Awaitable[object]) -> str:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await probe
    except Exception:  # what failed is the caller's answer; the outage is logged where it hurts
        return "down"
    return "ok"


async def _database(runtime: Runtime) -> None:
    async with runtime.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


@router.get(
    "/ready",
    responses={
        503: {
            "description": "A part is down; `checks` names it.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """Which part answers: ``checks`` maps each to ``ok`` or ``down``.

    The database is required: without it the answer is 503, ``unavailable``. Redis is not:
    while it is away the API still answers (jobs wait in the outbox, rate limits count in
    process), so the answer is 200, ``degraded``; a 503 there would take every replica out
    of the load balancer at once and turn a degraded service into an outage."""
    probes: dict[str, Awaitable[object]] = {"database": _database(runtime)}
    if runtime.redis is not None:
        probes["redis"] = runtime.redis.ping()
    results = await asyncio.gather(*(_check(p) for p in probes.values()))
    checks = dict(zip(probes, results, strict=True))
    if checks["database"] != "ok":
        status, code = "unavailable", 503
    elif "down" in checks.values():
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return JSONResponse({"status": status, "checks": checks}, status_code=code)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            "description": "The Prometheus text format.",
        },
        401: {"description": "No bearer token, or a wrong one."},
        403: {"description": "Signed in, but not an admin."},
    },
)
async def read_metrics(_: MetricsReader, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Prometheus metrics: requests and latencies by route template and status, queue
    depths, running, scheduled and failed jobs, workers, open WebSocket connections and the
    outbox backlog. For an admin's bearer token, or `METRICS_TOKEN` as the bearer token."""
    snapshot = await queues.snapshot(runtime, session, with_failed=False)
    body = metrics.exposition(SnapshotCollector(snapshot))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
