"""Admission: at most ``limit`` requests run at once in this process; the others wait their
turn, first come first served, without costing CPU.

Without it, a thousand open connections each start their request: all of them parse, sign
in and then queue for one of the pool's connections while sharing one core, so every one of
them is slow and many time out. Waiting at the door instead keeps the requests inside fast
and the wait fair; a request that waited ``timeout`` seconds is answered 503 with
``Retry-After`` (nothing of it ran). Liveness and readiness never wait."""

from __future__ import annotations

import asyncio

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from commissary.core.errors import busy

log = structlog.get_logger(__name__)

# The event stream holds its request open for as long as the reader follows it.
EXEMPT = frozenset({"/health", "/ready", "/api/v1/events/stream"})


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, limit: int, timeout: float) -> None:
        self.app = app
        self.timeout = timeout
        # asyncio's semaphore wakes its waiters in the order they came.
        self._slots = asyncio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        try:
            if self._slots.locked():  # a free slot is taken at once, without a timer
                async with asyncio.timeout(self.timeout):
                    await self._slots.acquire()
            else:
                await self._slots.acquire()
        except TimeoutError:
            log.warning("request_not_admitted", path=scope["path"], waited_s=self.timeout)
            await busy(scope["path"])(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()
