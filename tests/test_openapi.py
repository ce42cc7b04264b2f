"""The OpenAPI document is the contract: list parameters from the whitelists, every error as
problem details, readable operation ids; and the HTTP edges around it (405, docs switch, CORS
on a 500). None of these needs a database: the app is built without starting its runtime."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from commissary.config import Settings
from commissary.main import create_app


def build_app(tmp_path: Path, **extra: Any) -> FastAPI:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="test",
        secret_key=secrets.token_urlsafe(48),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}",
        log_level="ERROR",
        **extra,
    )
    return create_app(settings)


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return build_app(tmp_path)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


# --- methods ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
async def test_users_me_answers_other_methods_with_405_not_the_id_route(
    http: httpx.AsyncClient, method: str
) -> None:
    response = await http.request(method, "/api/v1/users/me", json={})

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH"
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/orders", "GET, POST"),
        ("POST", "/api/v1/orders/1", "DELETE, GET"),
        ("POST", "/api/v1/users/1", "DELETE, GET, PATCH, PUT"),
        ("DELETE", "/api/v1/products", "GET, POST"),
    ],
)
async def test_405_allow_lists_every_method_of_the_path(
    http: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await http.request(method, path)

    assert response.status_code == 405
    assert response.headers["allow"] == allow


# --- docs switch --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
async def test_docs_can_be_switched_off(tmp_path: Path, path: str) -> None:
    app = build_app(tmp_path, api_docs=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(path)

    assert response.status_code == 404


async def test_docs_are_on_by_default(http: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert (await http.get(path)).status_code == 200, path


# --- CORS on a 500 ------------------------------------------------------------------------


async def test_a_500_carries_cors_headers_for_an_allowed_origin(tmp_path: Path) -> None:
    app = build_app(tmp_path, cors_origins=["https://shop.example"])

    async def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/test-only/explode", explode)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(
            "/test-only/explode", headers={"Origin": "https://shop.example"}
        )
        other = await client.get("/test-only/explode", headers={"Origin": "https://evil.example"})

    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "x-request-id" in response.headers
    assert other.status_code == 500
    assert "access-control-allow-origin" not in other.headers
