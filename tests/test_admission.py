"""Admission: a process runs a bounded number of requests at once; the others wait their turn
in order, and one that waits too long is told to retry. Liveness never waits."""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import Receive, Scope, Send

from commissary.core.admission import AdmissionMiddleware


class Gate:
    """An app whose requests finish when the test says so, recording the order they ran in."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.started.append(scope["query_string"].decode() or scope["path"])
        if scope["path"] != "/health":
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})


def client_of(app: AdmissionMiddleware) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_requests_over_the_limit_wait_their_turn_in_order() -> None:
    gate = Gate()
    async with client_of(AdmissionMiddleware(gate, limit=1, timeout=10)) as http:
        calls = []
        for n in range(4):
            calls.append(asyncio.create_task(http.get("/api/v1/orders", params={"n": n})))
            await asyncio.sleep(0.01)
        assert gate.started == ["n=0"]  # the others wait at the door
        gate.release.set()
        answers = await asyncio.gather(*calls)
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert gate.started == ["n=0", "n=1", "n=2", "n=3"]


async def test_a_request_that_waits_too_long_is_a_503_and_never_runs() -> None:
    gate = Gate()
    async with client_of(AdmissionMiddleware(gate, limit=1, timeout=0.2)) as http:
        first = asyncio.create_task(http.get("/api/v1/orders", params={"n": 0}))
        await asyncio.sleep(0.01)
        refused = await http.get("/api/v1/orders", params={"n": 1})
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["code"] == "overloaded"
        gate.release.set()
        assert (await first).status_code == 200
    assert gate.started == ["n=0"]


async def test_liveness_is_answered_while_every_slot_is_taken() -> None:
    gate = Gate()
    async with client_of(AdmissionMiddleware(gate, limit=1, timeout=0.2)) as http:
        busy = asyncio.create_task(http.get("/api/v1/orders"))
        await asyncio.sleep(0.01)
        assert (await http.get("/health")).status_code == 200
        gate.release.set()
        await busy
