"""The OpenAPI document is the contract: list parameters from the whitelists, every error as
problem details, readable operation ids; and the HTTP edges around it (405, docs switch, CORS
on a 500). None of these needs a database: the app is started on one that is never migrated."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from commissary.apikeys import repository as apikeys_repo
from commissary.catalog import ratings
from commissary.catalog import repository as catalog_repo
from commissary.config import Settings
from commissary.core.ids import MAX_ID
from commissary.core.listing import MAX_FILTERS, MAX_SORT_TERMS, ListSpec
from commissary.deliveries import repository as delivery_repo
from commissary.main import create_app
from commissary.models import OrderStatus, Role
from commissary.notifications import repository as notification_repo
from commissary.ops import audit
from commissary.orders import repository as order_repo
from commissary.support import repository as support_repo
from commissary.users import referrals
from commissary.users import repository as user_repo
from commissary.webhooks import repository as webhook_repo

LISTS = {
    "/api/v1/users": user_repo.USER_LIST,
    "/api/v1/restaurants": catalog_repo.RESTAURANT_LIST,
    "/api/v1/categories": catalog_repo.CATEGORY_LIST,
    "/api/v1/products": catalog_repo.PRODUCT_LIST,
    "/api/v1/products/{product_id}/option-groups": catalog_repo.OPTION_GROUP_LIST,
    "/api/v1/orders": order_repo.ORDER_LIST,
    "/api/v1/orders/{order_id}/events": order_repo.ORDER_EVENT_LIST,
    "/api/v1/products/{product_id}/ratings": ratings.RATING_LIST,
    "/api/v1/support/conversations": support_repo.CONVERSATION_LIST,
    "/api/v1/deliveries": delivery_repo.DELIVERY_LIST,
    "/api/v1/deliveries/available": delivery_repo.AVAILABLE_LIST,
    "/api/v1/notifications": notification_repo.NOTIFICATION_LIST,
    "/api/v1/users/me/referrals": referrals.REFERRAL_LIST,
    "/api/v1/api-keys": apikeys_repo.KEY_LIST,
    "/api/v1/webhooks": webhook_repo.WEBHOOK_LIST,
    "/api/v1/webhooks/{webhook_id}/deliveries": webhook_repo.DELIVERY_LIST,
    "/api/v1/ops/audit-log": audit.AUDIT_LOG_LIST,
}
# Lists with a parameter of their own besides the whitelist (checked in their own tests).
OTHER_LISTS = {"/api/v1/support/conversations/{conversation_id}/messages"}
METHODS = ("get", "put", "post", "patch", "delete")


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
    """The app as served: started (its runtime exists), on a database never migrated, so
    only answers that need no table are asked of it."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


@pytest.fixture
async def document(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def expected_names(spec: ListSpec) -> set[str]:
    names = {"limit", "offset", "sort", "search", *spec.extra}
    for name, flt in spec.filters.items():
        names |= {name if op == "eq" else f"{name}__{op}" for op in flt.ops}
    return names


def query_parameters(document: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    parameters = document["paths"][path]["get"].get("parameters", [])
    return {p["name"]: p for p in parameters if p["in"] == "query"}


# --- list parameters ----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(LISTS))
async def test_each_list_declares_every_whitelisted_parameter(
    document: dict[str, Any], path: str
) -> None:
    declared = query_parameters(document, path)

    assert set(declared) == expected_names(LISTS[path])
    for name, parameter in declared.items():
        assert parameter["description"], name
        assert parameter["required"] is False


async def test_list_parameters_are_typed_like_their_parsers(document: dict[str, Any]) -> None:
    orders = query_parameters(document, "/api/v1/orders")
    products = query_parameters(document, "/api/v1/products")
    categories = query_parameters(document, "/api/v1/categories")

    assert orders["status"]["schema"]["enum"] == [status.value for status in OrderStatus]
    assert orders["status__in"]["schema"]["items"]["enum"] == [s.value for s in OrderStatus]
    assert orders["status__in"]["explode"] is False
    assert orders["restaurant_id"]["schema"]["type"] == "integer"
    assert orders["order_time__gte"]["schema"] == {"type": "string", "format": "date-time"}
    assert orders["total__lt"]["schema"]["type"] == "number"
    assert orders["completed_time__isnull"]["schema"] == {"type": "boolean"}
    assert "`isnull`" in orders["completed_time__isnull"]["description"]
    assert "`lte`" in products["price__lte"]["description"]
    assert products["is_available"]["schema"] == {"type": "boolean"}
    assert products["name__icontains"]["schema"]["type"] == "string"
    assert categories["position"]["schema"]["minimum"] == 0
    assert query_parameters(document, "/api/v1/users")["role"]["schema"]["enum"] == [
        role.value for role in Role
    ]


async def test_sort_parameter_lists_each_sortable_field_both_ways(
    document: dict[str, Any],
) -> None:
    sort = query_parameters(document, "/api/v1/products")["sort"]

    assert sort["schema"]["maxItems"] == MAX_SORT_TERMS
    assert set(sort["schema"]["items"]["enum"]) == {
        term for name in catalog_repo.PRODUCT_LIST.sortable for term in (name, f"-{name}")
    }
    assert "password_hash" not in str(query_parameters(document, "/api/v1/users")["sort"])


async def test_limit_and_offset_declare_their_bounds(document: dict[str, Any]) -> None:
    limit = query_parameters(document, "/api/v1/restaurants")["limit"]["schema"]

    assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, 100)


async def test_no_other_operation_declares_list_parameters(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if method == "GET" and (path in LISTS or path in OTHER_LISTS):
            continue
        names = {p["name"] for p in operation.get("parameters", [])}
        assert not names & {"limit", "offset", "sort"}, (method, path)


# --- errors -------------------------------------------------------------------------------


def error_codes(operation: dict[str, Any]) -> set[int]:
    return {int(code) for code in operation["responses"] if int(code) >= 400}


async def test_fastapi_validation_schemas_are_replaced_by_problem(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]

    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    problem = schemas["Problem"]
    assert set(problem["properties"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "instance",
        "errors",
    }
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldError"}
    assert "HTTPValidationError" not in str(document)


async def test_every_error_response_is_a_problem(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if path == "/ready":
            continue  # its 503 is the readiness report
        for code in error_codes(operation):
            content = operation["responses"][str(code)]["content"]
            assert list(content) == ["application/problem+json"], (method, path, code)
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        # The menu and orders also take an API key, which adds its 401, 403 and 429.
        ("GET", "/api/v1/products", {400, 401, 403, 429, 503}),
        ("GET", "/api/v1/products/{product_id}", {401, 403, 404, 422, 429, 503}),
        ("GET", "/api/v1/users/me", {401, 403, 503}),
        ("GET", "/api/v1/orders", {400, 401, 403, 429, 503}),
        ("POST", "/api/v1/orders", {400, 401, 403, 409, 422, 429, 503}),
        ("POST", "/api/v1/orders/{order_id}/cancel", {400, 401, 403, 404, 409, 422, 429, 503}),
        ("POST", "/api/v1/auth/login", {400, 401, 409, 422, 429, 503}),
        ("POST", "/api/v1/auth/register", {400, 409, 422, 429, 503}),
        ("GET", "/health", set()),
    ],
)
async def test_operations_document_the_errors_they_can_answer_with(
    document: dict[str, Any], method: str, path: str, expected: set[int]
) -> None:
    operation = document["paths"][path][method.lower()]

    assert error_codes(operation) == expected


async def test_auth_errors_are_documented_only_where_a_token_is_needed(
    document: dict[str, Any],
) -> None:
    # The routes that read the refresh cookie refuse a cross-site request with a 403 too.
    cookie_routes = {"/api/v1/auth/refresh", "/api/v1/auth/logout"}
    for method, path, operation in operations(document):
        secured = "security" in operation
        assert (403 in error_codes(operation)) == (secured or path in cookie_routes), (method, path)
        if secured:
            assert 401 in error_codes(operation), (method, path)


async def test_not_found_is_documented_exactly_where_the_path_has_an_id(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        assert (404 in error_codes(operation)) == ("{" in path), (method, path)


# --- operation ids ------------------------------------------------------------------------


async def test_operation_ids_are_readable_and_unique(document: dict[str, Any]) -> None:
    ids = {
        (method, path): operation["operationId"] for method, path, operation in operations(document)
    }

    assert len(set(ids.values())) == len(ids)
    assert ids["POST", "/api/v1/orders"] == "orders_place"
    assert ids["GET", "/api/v1/orders"] == "orders_list"
    assert ids["GET", "/api/v1/orders/{order_id}/events"] == "orders_list_events"
    assert ids["GET", "/api/v1/users/me"] == "users_read_me"
    assert ids["GET", "/api/v1/products"] == "catalog_list_products"
    assert ids["POST", "/api/v1/auth/login"] == "auth_login"
    for operation_id in ids.values():
        assert operation_id.isidentifier() and "api_v1" not in operation_id, operation_id


# --- list caps ----------------------------------------------------------------------------


@pytest.mark.parametrize("terms", [MAX_SORT_TERMS + 1, 2000])
async def test_too_many_sort_terms_are_a_400_naming_sort(
    http: httpx.AsyncClient, terms: int
) -> None:
    response = await http.get("/api/v1/products", params={"sort": ",".join(["id"] * terms)})

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "too_many_sort_fields"
    assert response.json()["parameter"] == "sort"


@pytest.mark.parametrize("path", sorted(LISTS))
def test_every_documented_filter_combination_fits_under_the_cap(path: str) -> None:
    """The document cannot say "at most N of these parameters": the cap must never refuse a
    combination it allows."""
    spec = LISTS[path]
    counted = expected_names(spec) - {"limit", "offset", "sort", "search"} - set(spec.extra)
    assert len(counted) <= MAX_FILTERS


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
        ("POST", "/api/v1/orders/1", "DELETE, GET, PATCH, PUT"),
        ("PUT", "/api/v1/orders/report", "GET"),
        ("POST", "/api/v1/users/1", "DELETE, GET, PATCH, PUT"),
        ("DELETE", "/api/v1/products", "GET, POST"),
        ("OPTIONS", "/api/v1/orders/report", "GET"),
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


# --- links and NUL ------------------------------------------------------------------------


async def test_creates_link_to_the_operations_on_the_created_item(
    document: dict[str, Any],
) -> None:
    placed = document["paths"]["/api/v1/orders"]["post"]["responses"]["202"]["links"]
    created = document["paths"]["/api/v1/users"]["post"]["responses"]["201"]["links"]

    assert set(placed) == {
        "orders_read",
        "orders_edit",
        "orders_replace",
        "orders_delete",
        "orders_list_events",
        "orders_cancel",
        "orders_accept",
        "orders_reject",
        "orders_set_status",
    }
    assert placed["orders_cancel"] == {
        "operationId": "orders_cancel",
        "parameters": {"order_id": "$response.body#/id"},
    }
    assert created["users_read"]["parameters"] == {"user_id": "$response.body#/id"}
    assert "links" not in document["paths"]["/api/v1/auth/register"]["post"]["responses"]["201"]


async def test_free_text_list_parameters_declare_that_nul_is_refused(
    document: dict[str, Any], http: httpx.AsyncClient
) -> None:
    parameters = query_parameters(document, "/api/v1/products")

    for name in ("search", "name", "name__icontains"):
        assert parameters[name]["schema"]["pattern"] == "^[^\\x00]*$", name
    assert parameters["name__in"]["schema"]["items"]["pattern"] == "^[^\\x00]*$"
    assert "pattern" not in parameters["price"]["schema"]
    response = await http.get("/api/v1/products", params={"name__in": "a,b\x00"})
    assert response.status_code == 400
    assert response.json()["parameter"] == "name__in"


def integer_schemas(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "integer":
            found.append(node)
        for value in node.values():
            found += integer_schemas(value)
    elif isinstance(node, list):
        for value in node:
            found += integer_schemas(value)
    return found


async def test_integer_bounds_are_exact_integers(document: dict[str, Any]) -> None:
    """A float bound (9.223372036854776e18 for 2^63-1) would admit ids the API refuses."""
    owner_ids = document["components"]["schemas"]["RestaurantCreate"]["properties"]["owner_ids"]

    assert owner_ids["items"]["maximum"] == MAX_ID
    assert isinstance(owner_ids["items"]["maximum"], int)
    for schema in integer_schemas(document):
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            assert not isinstance(schema.get(key), float), schema


async def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        assert operation.get("summary"), (method, path)
        assert operation.get("description"), (method, path)
