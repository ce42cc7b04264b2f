"""The OpenAPI document is the contract: the query parameters of each list come from the
whitelist that validates them. Derived from what each route depends on, so a new route is
documented by the same rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from commissary.core.listing import list_parameters, list_query


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _document_list_parameters(route: RouteContext, operation: dict[str, Any]) -> None:
    for call in _calls(route.dependant):
        if isinstance(call, list_query):
            operation.setdefault("parameters", []).extend(list_parameters(call.spec))


def complete(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """Add what FastAPI cannot see to its generated ``document``."""
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"][route.path_format][method.lower()]
            _document_list_parameters(route, operation)
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
