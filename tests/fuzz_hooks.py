"""Schemathesis hooks for tests/test_fuzz.py, loaded through SCHEMATHESIS_HOOKS."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.checks import CheckContext
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario
from schemathesis.specs.openapi.checks import negative_data_rejection


def _required_in_body(case: Case) -> set[str]:
    """The properties the document itself requires in the JSON body of the operation."""
    body = case.operation.definition.raw.get("requestBody", {})
    schema = body.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        raw: dict[str, Any] = case.operation.schema.raw_schema
        schema = raw["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return set(schema.get("required", []))


@schemathesis.check
def negative_data_rejection_as_documented(
    ctx: CheckContext, response: Response, case: Case
) -> bool | None:
    """`negative_data_rejection` less one false positive of schemathesis 4.32.5: its coverage
    phase takes each property of an all-optional body (a PATCH) as required, and expects a
    body without one of them to be refused although the document requires none."""
    data = case.meta.phase.data if case.meta is not None else None
    if (
        isinstance(data, CoveragePhaseData)
        and data.scenario == CoverageScenario.OBJECT_MISSING_REQUIRED_PROPERTY
        and data.parameter_location == ParameterLocation.BODY
        and data.description.rpartition(": ")[2] not in _required_in_body(case)
    ):
        return None
    return negative_data_rejection(ctx, response, case)
