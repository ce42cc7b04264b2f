"""Whitelisted list queries: ``limit``/``offset``, ``sort=-price,name``, ``field=value``,
``field__op=value`` and ``search=text``. Anything not declared for the resource is a 400
that names the parameter, so clients can never sort or filter by an undeclared column."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.errors import DomainError

MAX_LIMIT = 100
MAX_IN_VALUES = 100
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
        # Normalised here, so a date at the edge of the calendar is a 400, not an overflow.
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("date out of range") from None


def parse_amount(raw: str) -> Decimal:
    """A finite amount below 10^9: the database never sees a number it cannot compare."""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError("expected a decimal number") from None
    if not value.is_finite() or value.adjusted() >= 9:  # no arithmetic: 1e999999999 overflows
        raise ValueError("expected an amount below 1000000000")
    return value


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return parse


@dataclass(frozen=True)
class Filter:
    column: Any
    parse: Callable[[str], Any] = str  # NUL is refused for every parameter beforehand
    ops: frozenset[str] = EXACT_OPS


@dataclass(frozen=True)
class ListSpec:
    filters: Mapping[str, Filter]
    sortable: Mapping[str, Any]
    default_sort: Sequence[str]
    search: Sequence[Any] = field(default_factory=tuple)


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
    for key, raw in params.items():
        if "\x00" in key or "\x00" in raw:
            raise BadListQuery(
                "query parameters must not contain NUL characters",
                extra={"parameter": key.replace("\x00", "")},
            )
        if key in RESERVED:
            continue
        name, separator, op = key.partition("__")
        flt = spec.filters.get(name)
        if flt is None:
            raise BadListQuery(
                f"'{name}' is not a filter of this list; "
                f"filters: {', '.join(sorted(spec.filters))}",
                code="unknown_filter",
                extra={"parameter": key},
            )
        op = op if separator else "eq"  # "name__" (no operator) is refused below
        if op not in flt.ops:
            raise BadListQuery(
                f"operator '{op}' is not allowed on '{name}'; "
                f"allowed: {', '.join(sorted(flt.ops))}",
                code="unknown_filter_operator",
                extra={"parameter": key},
            )
        where.append(_condition(key, flt, op, raw))
    search = params.get("search", "").strip()
    if search and spec.search:
        needle = search.lower()[:100]
        where.append(or_(*(func.lower(c).contains(needle, autoescape=True) for c in spec.search)))
    order_by = []
    for item in (params.get("sort") or ",".join(spec.default_sort)).split(","):
        item = item.strip()
        if not item:
            continue  # a trailing comma
        name = item.removeprefix("-")
        if name not in spec.sortable:
            raise BadListQuery(
                f"cannot sort by '{name}'; sortable: {', '.join(sorted(spec.sortable))}",
                code="unknown_sort_field",
                extra={"parameter": "sort"},
            )
        column = spec.sortable[name]
        order_by.append(column.desc() if item.startswith("-") else column.asc())
    return ListQuery(
        limit=_int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_int_param(params, "offset", 0, 0, 10_000_000),
        where=where,
        order_by=order_by,
    )


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
