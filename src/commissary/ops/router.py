"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from commissary.core.deps import RuntimeDep
from commissary.core.runtime import Runtime

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
