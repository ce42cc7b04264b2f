"""Operations: liveness and readiness, API documentation, security headers, request ids and
the problem-details shape of framework errors."""

from __future__ import annotations

import re

import httpx
import pytest

from commissary.main import create_app
from tests.conftest import Backend, MakeUser, make_settings
from tests.servers import Mailbox, RedisServer, free_port

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def csp_directives(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        if words := part.split():
            directives[words[0]] = words[1:]
    return directives


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://commissary.dev/problems/{code}"
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


# --- liveness and readiness ---------------------------------------------------------------


async def test_health_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_checks_the_database_and_redis_when_configured(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    response = await client.get("/ready")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    expected = {"database": "ok"} if backend.name == "sqlite" else {"database": "ok", "redis": "ok"}
    assert body["checks"] == expected


async def test_ready_is_degraded_naming_redis_while_redis_is_down(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    if backend.name == "sqlite":
        pytest.skip("the embedded mode has no Redis")
    assert backend.redis is not None
    backend.redis.stop()
    try:
        response = await client.get("/ready")
    finally:
        backend.redis.start()

    # The API still answers without Redis: 200, so replicas stay behind the load balancer.
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "degraded", "checks": {"database": "ok", "redis": "down"}}

    again = await client.get("/ready")  # Redis back: ready again, without a restart
    assert again.status_code == 200, again.text
    assert again.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_ready_is_503_naming_the_database_when_it_is_down(
    redis_server: RedisServer, smtp: tuple[int, Mailbox]
) -> None:
    nowhere = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/commissary"
    app = create_app(make_settings(nowhere, redis_server.url, smtp[0]))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        response = await http.get("/ready")

    assert response.status_code == 503, response.text
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "down", "redis": "ok"},
    }


# --- documentation ------------------------------------------------------------------------


async def test_openapi_document_describes_the_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Commissary"
    assert {"/health", "/ready", "/api/v1/auth/login", "/api/v1/users/me"} <= set(document["paths"])


@pytest.mark.parametrize(("path", "marker"), [("/docs", "swagger-ui"), ("/redoc", "redoc")])
async def test_documentation_pages_are_served(
    client: httpx.AsyncClient, path: str, marker: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert marker in response.text.lower()
    assert "/openapi.json" in response.text


# --- security headers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/docs", 200),
        ("GET", "/no/such/route", 404),
        ("DELETE", "/health", 405),
        ("POST", "/api/v1/auth/login", 422),
        ("GET", "/api/v1/users/me", 401),
    ],
)
async def test_every_answer_carries_the_security_headers(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, json={} if method == "POST" else None)

    assert response.status_code == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    csp = csp_directives(response.headers["Content-Security-Policy"])
    assert csp["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize("path", ["/health", "/openapi.json", "/api/v1/users/me"])
async def test_api_answers_have_a_deny_everything_csp(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    csp = csp_directives(response.headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'none'"]
    assert "script-src" not in csp


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_documentation_csp_allows_the_jsdelivr_bundles_only(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    csp = csp_directives(response.headers["Content-Security-Policy"])
    assert "https://cdn.jsdelivr.net" in csp["script-src"]
    assert "*" not in csp["script-src"]
    assert csp["default-src"] == ["'self'"]
    # the page's own bundle URLs are allowed by the policy it is served with
    sources = re.findall(r'<script src="([^"]+)"', response.text)
    assert sources
    for src in sources:
        assert src.startswith(("https://cdn.jsdelivr.net/", "/")), src


async def test_answers_to_authenticated_requests_are_not_cached(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user()

    mine = await client.get("/api/v1/users/me", headers=account.headers)
    assert mine.status_code == 200
    assert mine.headers["Cache-Control"] == "no-store"

    bad_token = await client.get("/health", headers={"Authorization": "Bearer nonsense"})
    assert bad_token.headers["Cache-Control"] == "no-store"


async def test_sign_in_answers_are_not_cached(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user()
    response = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": account.password}
    )

    assert response.status_code == 200, response.text
    assert "access_token" in response.json()
    assert response.headers["Cache-Control"] == "no-store"


async def test_anonymous_public_answers_may_be_cached(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert "no-store" not in response.headers.get("Cache-Control", "")


# --- request id ---------------------------------------------------------------------------


async def test_a_valid_client_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "checkout-42.retry_1"})
    assert response.headers["X-Request-ID"] == "checkout-42.retry_1"


async def test_a_request_id_is_generated_when_the_client_sends_none(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/health")
    second = await client.get("/no/such/route")

    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", second.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize("sent", ["x" * 65, "has space", "new\\nline", "<script>", ""])
async def test_an_invalid_client_request_id_is_replaced(
    client: httpx.AsyncClient, sent: str
) -> None:
    response = await client.get("/health", headers={"X-Request-ID": sent})

    echoed = response.headers.get_list("X-Request-ID")
    assert len(echoed) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", echoed[0]), echoed


# --- problem details of framework errors --------------------------------------------------


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/no-such-thing")

    body = assert_problem(response, 404, "not_found")
    assert body["title"] == "Not Found"
    assert body["instance"] == "/api/v1/no-such-thing"


async def test_malformed_json_body_is_a_422_problem_with_errors(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        content=b'{"email": "a@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )

    body = assert_problem(response, 422, "validation_failed")
    errors = body["errors"]
    assert isinstance(errors, list) and errors
    assert all({"in", "field", "message", "type"} <= set(e) for e in errors)
    assert errors[0]["in"] == "body"
    assert errors[0]["type"] == "json_invalid"


async def test_wrong_method_is_a_405_problem_listing_the_allowed_ones(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/health")

    body = assert_problem(response, 405, "method_not_allowed")
    assert body["title"] == "Method Not Allowed"
    assert "GET" in response.headers["Allow"]
