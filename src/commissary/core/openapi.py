"""The OpenAPI document is the contract: readable operation ids, the query parameters of each
list (from the whitelist that validates them) and every error an operation can answer with,
as problem details. Derived from what each route depends on, so a new route is documented by
the same rules."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from commissary.core.deps import client_address, get_session, get_statement_session
from commissary.core.errors import FIELD_ERROR_SCHEMA, PROBLEM_JSON, PROBLEM_SCHEMA
from commissary.core.ids import MAX_ID
from commissary.core.listing import list_parameters, list_query

ERROR_DESCRIPTIONS = {
    400: "A query parameter is refused (`parameter` names it), or the body is not JSON.",
    401: "Not signed in, or the credentials are wrong or expired.",
    403: "Signed in, but this account may not do this.",
    404: "Nothing with this id, or nothing this account may see.",
    409: "The request conflicts with the current state (a taken name, a refused transition).",
    422: "The body or a parameter is invalid; `errors` names each field.",
    429: "Too many attempts; retry after the `Retry-After` seconds.",
    503: "The database is unavailable or busy; retry later.",
}
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# FastAPI's own 422 schemas; every 422 here is a Problem.
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def operation_id(route: APIRoute) -> str:
    """`{tag}_{function name}`, without the tag's noun: `orders_place`, `users_list`."""
    if not route.tags:
        return route.name
    tag = str(route.tags[0])
    words = [w for w in route.name.split("_") if w not in (tag, tag.removesuffix("s"))]
    return f"{tag}_{'_'.join(words or [route.name])}"


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def error_statuses(route: RouteContext, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses ``route`` can answer ``method`` with, from what it depends on."""
    calls = list(_calls(route.dependant))
    statuses = {int(code) for code in operation.get("responses", {}) if code.isdigit()}
    statuses = {status for status in statuses if status >= 400}
    if any(isinstance(call, list_query) for call in calls) or "requestBody" in operation:
        statuses.add(400)  # a refused list parameter, or a body that is not JSON
    if "security" in operation:
        statuses |= {401, 403}
    for call in calls:  # what a dependency says it may add (e.g. an API key's 429)
        statuses |= set(getattr(call, "error_statuses", ()))
    if any(p["in"] == "path" for p in operation.get("parameters", [])):
        statuses.add(404)
    if client_address in calls:  # the address is what per-client limits count
        statuses.add(429)
    if get_session in calls or get_statement_session in calls:
        statuses.add(503)
        if method in WRITES:
            statuses.add(409)
    return statuses


def _document_errors(route: RouteContext, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for status in sorted(error_statuses(route, method, operation)):
        declared = route.responses.get(status, {})
        response = responses.setdefault(str(status), {})
        if "model" in declared or "content" in declared:
            continue  # the route documents its own body (e.g. /ready's 503)
        if status in ERROR_DESCRIPTIONS and not declared.get("description"):
            response["description"] = ERROR_DESCRIPTIONS[status]
        response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}


def _document_optional_auth(route: RouteContext, operation: dict[str, Any]) -> None:
    """A public operation that also takes credentials (an API key on the menu) lists the
    empty requirement too: no credentials at all is fine."""
    if any(getattr(call, "optional_auth", False) for call in _calls(route.dependant)):
        security = operation.setdefault("security", [])
        if {} not in security:
            security.insert(0, {})


def _document_list_parameters(route: RouteContext, operation: dict[str, Any]) -> None:
    for call in _calls(route.dependant):
        if isinstance(call, list_query):
            operation.setdefault("parameters", []).extend(list_parameters(call.spec))


def _link_created_resources(paths: dict[str, Any]) -> None:
    """OpenAPI links from each create (a 201 or 202 to a POST on a collection) to the
    operations on the created item, so clients and fuzzers can follow the new `id`."""
    for path, item in paths.items():
        created = item.get("post", {}).get("responses", {})
        success = next((created[code] for code in ("201", "202") if code in created), None)
        if success is None or path.endswith("}"):
            continue
        for target, target_item in paths.items():
            tail = target.removeprefix(path + "/")
            if target == tail or not tail.startswith("{") or tail.count("{") != 1:
                continue
            parameter = tail[1 : tail.index("}")]
            for operation in target_item.values():
                success.setdefault("links", {})[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {parameter: "$response.body#/id"},
                }


def _exact_integer_bounds(node: Any) -> None:
    """FastAPI's OpenAPI model stores bounds as floats, so an integer schema's `maximum` of
    2^63-1 became 9.223372036854776e18, which admits ids the API refuses. Integers here are
    64-bit: a bound is made an integer again, and one past 64 bits the 64-bit edge."""
    if isinstance(node, list):
        for item in node:
            _exact_integer_bounds(item)
    if not isinstance(node, dict):
        return
    if node.get("type") == "integer":
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            value = node.get(key)
            if isinstance(value, float):
                node[key] = max(-MAX_ID - 1, min(MAX_ID, int(value)))
    for value in node.values():
        _exact_integer_bounds(value)


def complete(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """Add what FastAPI cannot see to its generated ``document``."""
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"][route.path_format][method.lower()]
            _document_optional_auth(route, operation)
            _document_list_parameters(route, operation)
            _document_errors(route, method, operation)
    _link_created_resources(document["paths"])
    _exact_integer_bounds(document)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas["Problem"] = copy.deepcopy(PROBLEM_SCHEMA)
    schemas["FieldError"] = copy.deepcopy(FIELD_ERROR_SCHEMA)
    return document


def install(app: FastAPI) -> None:
    """Serve the completed document at the app's ``openapi_url``."""
    generate = app.openapi
    completed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = generate()  # cached by FastAPI until the routes change
        if not completed or completed[0] is not document:
            completed[:] = [complete(app, document)]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
