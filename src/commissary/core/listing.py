"""Whitelisted list queries: ``limit``/``offset``, ``sort=-price,name``, ``field=value``,
``field__op=value`` and ``search=text``. Anything not declared for the resource is a 400
that names the parameter, so clients can never sort or filter by an undeclared column."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.errors import DomainError
from commissary.core.ids import MAX_ID, parse_id

MAX_LIMIT = 100
MAX_OFFSET = 10_000_000
MAX_IN_VALUES = 100
# Each term is an ORDER BY clause and each filter a WHERE clause: unbounded, a single request
# could ask the database for thousands of them. A list's whitelist stays within MAX_FILTERS
# (a test checks it), so every combination the OpenAPI document allows is accepted.
MAX_SORT_TERMS = 5
MAX_FILTERS = 50
DEFAULT_LIMIT = 20
RESERVED = frozenset({"limit", "offset", "sort", "search"})
ALL_OPS = frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "icontains", "isnull"})
ORDER_OPS = frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "isnull"})
TEXT_OPS = frozenset({"eq", "ne", "in", "contains", "icontains", "isnull"})
EXACT_OPS = frozenset({"eq", "ne", "in", "isnull"})

T = TypeVar("T")


class BadListQuery(DomainError):
    status, code = 400, "invalid_query_parameter"


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise ValueError("expected true or false")


def parse_datetime(raw: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(raw)
    try:
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except OverflowError:
        # Before year 1 or after 9999 once in UTC (`0001-01-01T00:00:00+01:00`): the edge of
        # the calendar compares the same with every stored time, and every RFC 3339 date-time
        # stays a valid bound.
        edge = dt.datetime.max if value.year == dt.MAXYEAR else dt.datetime.min
        return edge.replace(tzinfo=dt.UTC)


def parse_amount(raw: str) -> Decimal:
    """A finite amount below 10^9: the database never sees a number it cannot compare."""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError("expected a decimal number") from None
    if not value.is_finite() or value.adjusted() >= 9:  # no arithmetic: 1e999999999 overflows
        raise ValueError("expected an amount below 1000000000")
    return value


@dataclass(frozen=True)
class BoundedInt:
    """Parses an integer from ``low`` to ``high``; the bounds also go into the OpenAPI
    document."""

    low: int
    high: int

    def __call__(self, raw: str) -> int:
        value = int(raw)
        if not self.low <= value <= self.high:
            raise ValueError(f"expected an integer from {self.low} to {self.high}")
        return value


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    return BoundedInt(low, high)


@dataclass(frozen=True)
class Filter:
    column: Any
    parse: Callable[[str], Any] = str  # NUL is refused for every parameter beforehand
    ops: frozenset[str] = EXACT_OPS


@dataclass(frozen=True)
class Extra:
    """A query parameter that a list's endpoint reads itself (not a column filter): declared
    in the OpenAPI document and let through by the parser."""

    schema: Mapping[str, Any]
    description: str


@dataclass(frozen=True)
class ListSpec:
    filters: Mapping[str, Filter]
    sortable: Mapping[str, Any]
    default_sort: Sequence[str]
    search: Sequence[Any] = field(default_factory=tuple)
    extra: Mapping[str, Extra] = field(default_factory=dict)


@dataclass(frozen=True)
class ListQuery:
    limit: int
    offset: int
    where: list[ColumnElement[bool]]
    order_by: list[Any]


def _int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadListQuery(f"'{name}' must be an integer", extra={"parameter": name}) from None
    if not low <= value <= high:
        raise BadListQuery(f"'{name}' must be between {low} and {high}", extra={"parameter": name})
    return value


def _condition(name: str, spec: Filter, op: str, raw: str) -> ColumnElement[bool]:
    col = spec.column
    try:
        if op == "isnull":
            return col.is_(None) if parse_bool(raw) else col.is_not(None)  # type: ignore[no-any-return]
        if op == "in":
            parts = [part for part in raw.split(",") if part]
            if len(parts) > MAX_IN_VALUES:
                raise ValueError(f"at most {MAX_IN_VALUES} values")
            return col.in_([spec.parse(part) for part in parts])  # type: ignore[no-any-return]
        value = spec.parse(raw)
    except ValueError as exc:
        raise BadListQuery(
            f"invalid value for '{name}': {exc}", extra={"parameter": name}
        ) from None
    conditions: dict[str, Callable[[], ColumnElement[bool]]] = {
        "eq": lambda: col == value,
        "ne": lambda: col != value,
        "lt": lambda: col < value,
        "lte": lambda: col <= value,
        "gt": lambda: col > value,
        "gte": lambda: col >= value,
        "contains": lambda: col.contains(value, autoescape=True),
        "icontains": lambda: func.lower(col).contains(str(value).lower(), autoescape=True),
    }
    return conditions[op]()


def parse_list_query(params: Mapping[str, str], spec: ListSpec) -> ListQuery:
    where: list[ColumnElement[bool]] = []
    filters = 0
    for key, raw in params.items():
        if "\x00" in key or "\x00" in raw:
            raise BadListQuery(
                "query parameters must not contain NUL characters",
                extra={"parameter": key.replace("\x00", "")},
            )
        if key in RESERVED or key in spec.extra:
            continue
        filters += 1
        if filters > MAX_FILTERS:
            raise BadListQuery(
                f"at most {MAX_FILTERS} filters per request; '{key}' is one too many",
                code="too_many_filters",
                extra={"parameter": key},
            )
        where.append(_filter(key, raw, spec))
    search = params.get("search", "").strip()
    if search and spec.search:
        needle = search.lower()[:100]
        where.append(or_(*(func.lower(c).contains(needle, autoescape=True) for c in spec.search)))
    return ListQuery(
        limit=_int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_int_param(params, "offset", 0, 0, MAX_OFFSET),
        where=where,
        order_by=_order_by(params.get("sort") or ",".join(spec.default_sort), spec),
    )


def _filter(key: str, raw: str, spec: ListSpec) -> ColumnElement[bool]:
    name, separator, op = key.partition("__")
    flt = spec.filters.get(name)
    if flt is None:
        raise BadListQuery(
            f"'{name}' is not a filter of this list; filters: {', '.join(sorted(spec.filters))}",
            code="unknown_filter",
            extra={"parameter": key},
        )
    op = op if separator else "eq"  # "name__" (no operator) is refused below
    if op not in flt.ops:
        raise BadListQuery(
            f"operator '{op}' is not allowed on '{name}'; allowed: {', '.join(sorted(flt.ops))}",
            code="unknown_filter_operator",
            extra={"parameter": key},
        )
    return _condition(key, flt, op, raw)


def _order_by(sort: str, spec: ListSpec) -> list[Any]:
    terms = [term.strip() for term in sort.split(",")]
    if sort.strip() and not all(terms):
        raise BadListQuery(
            "'sort' has an empty field: give field names separated by single commas",
            code="unknown_sort_field",
            extra={"parameter": "sort"},
        )
    terms = [term for term in terms if term]
    for term in terms:
        name = term.removeprefix("-")
        if name not in spec.sortable:
            raise BadListQuery(
                f"cannot sort by '{name}'; sortable: {', '.join(sorted(spec.sortable))}",
                code="unknown_sort_field",
                extra={"parameter": "sort"},
            )
    if len(terms) > MAX_SORT_TERMS:
        raise BadListQuery(
            f"'sort' takes at most {MAX_SORT_TERMS} fields",
            code="too_many_sort_fields",
            extra={"parameter": "sort"},
        )
    return [
        spec.sortable[term[1:]].desc() if term.startswith("-") else spec.sortable[term].asc()
        for term in terms
    ]


class list_query:  # noqa: N801 - used as a dependency factory: Depends(list_query(SPEC))
    """The dependency that parses a list's query string with ``spec``. ``core.openapi``
    documents the parameters of each route that uses it from the same ``spec`` (see
    ``list_parameters``)."""

    def __init__(self, spec: ListSpec) -> None:
        self.spec = spec

    def __call__(self, request: Request) -> ListQuery:
        params = request.query_params
        # `sort=a&sort=b` and `x__in=1&x__in=2` (how many clients send arrays) mean the same as
        # their comma-separated forms; for any other repeated parameter the last one counts.
        merged = {
            key: ",".join(params.getlist(key)) if key == "sort" or key.endswith("__in") else raw
            for key, raw in params.items()
        }
        return parse_list_query(merged, self.spec)


OP_DESCRIPTIONS = {
    "eq": "`{name}` equals this value",
    "ne": "`{name}` differs from this value (`ne`)",
    "lt": "`{name}` is less than this value (`lt`)",
    "lte": "`{name}` is less than or equal to this value (`lte`)",
    "gt": "`{name}` is greater than this value (`gt`)",
    "gte": "`{name}` is greater than or equal to this value (`gte`)",
    "in": "`{name}` is one of these values, comma-separated (`in`)",
    "contains": "`{name}` contains this text (`contains`)",
    "icontains": "`{name}` contains this text, ignoring case (`icontains`)",
    "isnull": "`{name}` is empty (`true`) or set (`false`) (`isnull`)",
}
NO_NUL = "^[^\\x00]*$"  # NUL is refused in every parameter (see parse_list_query)
_VALUE_SCHEMAS: dict[Callable[[str], Any], dict[str, Any]] = {
    parse_bool: {"type": "boolean"},
    parse_datetime: {"type": "string", "format": "date-time"},
    parse_amount: {"type": "number", "exclusiveMinimum": -1e9, "exclusiveMaximum": 1e9},
    parse_id: {"type": "integer", "minimum": 1, "maximum": MAX_ID},
}


def value_schema(parse: Callable[[str], Any]) -> dict[str, Any]:
    """The JSON schema of the values that ``parse`` accepts."""
    if isinstance(parse, type) and issubclass(parse, enum.Enum):
        return {"type": "string", "enum": [member.value for member in parse]}
    if isinstance(parse, BoundedInt):
        return {"type": "integer", "minimum": parse.low, "maximum": parse.high}
    return dict(_VALUE_SCHEMAS.get(parse, {"type": "string"}))


def _array(items: dict[str, Any], max_items: int) -> dict[str, Any]:
    return {"type": "array", "items": items, "maxItems": max_items}


def _without_nul(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") == "array":
        return {**schema, "items": _without_nul(schema["items"])}
    if schema.get("type") == "string" and "enum" not in schema and "format" not in schema:
        return {**schema, "pattern": NO_NUL}
    return schema


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    schema = _without_nul(schema)
    parameter = {"name": name, "in": "query", "required": False, "schema": schema}
    if schema["type"] == "array":  # comma-separated: `sort=-price,name`
        parameter.update(style="form", explode=False)
    return {**parameter, "description": description}


def list_parameters(spec: ListSpec) -> list[dict[str, Any]]:
    """The OpenAPI query parameters of a list, from the same whitelist that validates them."""
    sort_terms = [term for name in sorted(spec.sortable) for term in (name, f"-{name}")]
    parameters = [
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            "How many items to return.",
        ),
        _query(
            "offset",
            {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
            "How many matching items to skip.",
        ),
        _query(
            "sort",
            _array(
                {
                    "type": "string",
                    "enum": sort_terms,
                    # Names for generated clients' enums: PRICE, PRICE_DESC.
                    "x-enum-varnames": [
                        term.removeprefix("-").upper() + ("_DESC" if term[0] == "-" else "")
                        for term in sort_terms
                    ],
                },
                MAX_SORT_TERMS,
            ),
            "Fields to sort by, comma-separated; `-` before a field sorts descending. "
            f"Default: `{','.join(spec.default_sort)}`.",
        ),
    ]
    if spec.search:
        parameters.append(
            _query("search", {"type": "string"}, "Text to find in the items (ignoring case).")
        )
    for name, extra in spec.extra.items():
        parameters.append(_query(name, dict(extra.schema), extra.description))
    for name in sorted(spec.filters):
        flt = spec.filters[name]
        for op in sorted(flt.ops, key=list(OP_DESCRIPTIONS).index):
            if op == "isnull":
                schema = {"type": "boolean"}
            elif op in ("contains", "icontains"):
                schema = {"type": "string"}
            elif op == "in":
                schema = _array(value_schema(flt.parse), MAX_IN_VALUES)
            else:
                schema = value_schema(flt.parse)
            key = name if op == "eq" else f"{name}__{op}"
            parameters.append(_query(key, schema, OP_DESCRIPTIONS[op].format(name=name) + "."))
    return parameters


async def fetch_page(
    session: AsyncSession, stmt: Select[Any], query: ListQuery, tiebreak: Any
) -> tuple[list[Any], int]:
    """The page of ``stmt`` that ``query`` asks for, and the total number of matching rows."""
    filtered = stmt.where(*query.where)
    total = await session.scalar(
        select(func.count()).select_from(filtered.order_by(None).subquery())
    )
    page = filtered.order_by(*query.order_by, tiebreak).limit(query.limit).offset(query.offset)
    rows = list((await session.scalars(page)).all())
    return rows, int(total or 0)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
