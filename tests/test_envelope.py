"""The envelope of every answer: the security headers and the request id, whatever the app
behind sent."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers

from commissary.core.middleware import API_CSP, DOCS_CSP, RequestContextMiddleware


async def _answer(path: str, headers: list[tuple[bytes, bytes]], app_headers: Any) -> Headers:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": app_headers})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    await RequestContextMiddleware(app)(scope, receive, send)
    return Headers(raw=[(bytes(k), bytes(v)) for k, v in sent[0]["headers"]])


async def test_a_signed_in_answer_gets_our_headers_in_place_of_the_apps() -> None:
    answer = await _answer(
        "/api/v1/orders/1",
        [(b"authorization", b"Bearer x"), (b"x-request-id", b"req-1")],
        [
            (b"content-type", b"application/json"),
            (b"Cache-Control", b"public, max-age=60"),
            (b"x-frame-options", b"SAMEORIGIN"),
        ],
    )
    assert answer.getlist("cache-control") == ["no-store"]
    assert answer.getlist("x-frame-options") == ["DENY"]
    assert answer["content-security-policy"] == API_CSP
    assert answer["x-content-type-options"] == "nosniff"
    assert answer["x-request-id"] == "req-1"
    assert answer["content-type"] == "application/json"


async def test_an_anonymous_page_keeps_its_caching_and_gets_its_own_policy() -> None:
    answer = await _answer("/docs", [], [(b"cache-control", b"public, max-age=60")])
    assert answer.getlist("cache-control") == ["public, max-age=60"]
    assert answer["content-security-policy"] == DOCS_CSP
    assert len(answer["x-request-id"]) == 32  # made up, as none was sent
