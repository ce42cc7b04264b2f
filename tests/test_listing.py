"""Properties of the whitelisted list query parser: what is not declared is refused by name,
what is declared always parses."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi import Request
from hypothesis import example, given
from hypothesis import strategies as st

from commissary.core.listing import (
    MAX_FILTERS,
    MAX_LIMIT,
    MAX_SORT_TERMS,
    ORDER_OPS,
    RESERVED,
    TEXT_OPS,
    BadListQuery,
    Filter,
    ListSpec,
    list_query,
    parse_bool,
    parse_datetime,
    parse_list_query,
)
from commissary.models import Role, User

SPEC = ListSpec(
    filters={
        "email": Filter(User.email, ops=TEXT_OPS),
        "role": Filter(User.role, Role),
        "is_active": Filter(User.is_active, parse_bool),
        "created_at": Filter(User.created_at, parse_datetime, ORDER_OPS),
    },
    sortable={"id": User.id, "email": User.email, "created_at": User.created_at},
    default_sort=("id",),
    search=(User.email, User.full_name),
)
KNOWN_NAMES = sorted(set(SPEC.filters) | RESERVED)

# NUL is refused before any other rule (tested on its own below).
text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)


def rejects(params: dict[str, str]) -> BadListQuery:
    with pytest.raises(BadListQuery) as caught:
        parse_list_query(params, SPEC)
    assert caught.value.status == 400
    return caught.value


# --- strategies for valid queries ---------------------------------------------------------

bool_words = st.sampled_from(["true", "false", "1", "0", "yes", "no", " TRUE ", "No"])
role_values = st.sampled_from([role.value for role in Role])
datetimes = st.one_of(
    st.datetimes(),
    st.datetimes(timezones=st.timezones()),
).map(dt.datetime.isoformat)


def joined(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(values, max_size=4).map(",".join)


def filter_values(name: str, op: str) -> st.SearchStrategy[str]:
    if op == "isnull":
        return bool_words
    single = {
        "email": text,
        "role": role_values,
        "is_active": bool_words,
        "created_at": datetimes,
    }[name]
    return joined(single) if op == "in" else single


@st.composite
def valid_filters(draw: st.DrawFn) -> dict[str, str]:
    params: dict[str, str] = {}
    for name in draw(st.lists(st.sampled_from(sorted(SPEC.filters)), unique=True)):
        op = draw(st.sampled_from(sorted(SPEC.filters[name].ops)))
        key = draw(st.sampled_from([name, f"{name}__{op}"])) if op == "eq" else f"{name}__{op}"
        params[key] = draw(filter_values(name, op))
    return params


sort_items = st.lists(st.tuples(st.sampled_from(sorted(SPEC.sortable)), st.booleans()), max_size=4)


# --- properties ---------------------------------------------------------------------------


@given(
    filters=valid_filters(),
    sort=sort_items,
    limit=st.none() | st.integers(1, MAX_LIMIT),
    offset=st.none() | st.integers(0, 10_000_000),
    search=st.none() | text,
)
def test_valid_queries_always_parse(
    filters: dict[str, str],
    sort: list[tuple[str, bool]],
    limit: int | None,
    offset: int | None,
    search: str | None,
) -> None:
    params = dict(filters)
    if sort:
        params["sort"] = ",".join(f"-{name}" if desc else name for name, desc in sort)
    if limit is not None:
        params["limit"] = str(limit)
    if offset is not None:
        params["offset"] = str(offset)
    if search is not None:
        params["search"] = search
    query = parse_list_query(params, SPEC)
    assert query.limit == (20 if limit is None else limit)
    assert query.offset == (offset or 0)
    searching = bool(search and search.strip())
    assert len(query.where) == len(filters) + searching
    expected_sort = sort or [(name, False) for name in SPEC.default_sort]
    assert len(query.order_by) == len(expected_sort)
    for clause, (name, desc) in zip(query.order_by, expected_sort, strict=True):
        assert str(clause).endswith(" DESC" if desc else " ASC")
        assert str(clause).split(".")[-1].split(" ")[0] == SPEC.sortable[name].key


unknown_names = st.one_of(
    text,
    st.builds(lambda base, tail: base + tail, st.sampled_from(KNOWN_NAMES), text),
    st.builds(lambda base, tail: base.upper() + tail, st.sampled_from(KNOWN_NAMES), text),
    st.builds(lambda base, tail: f"{base}__{tail}", st.sampled_from(sorted(RESERVED)), text),
).filter(lambda key: key not in RESERVED and key.partition("__")[0] not in SPEC.filters)


@given(key=unknown_names, value=text, others=valid_filters())
@example(key="password_hash", value="x", others={})
@example(key="full_name", value="x", others={"email": "a"})
def test_undeclared_filter_is_rejected_naming_the_parameter(
    key: str, value: str, others: dict[str, str]
) -> None:
    error = rejects({**others, key: value})
    assert error.code == "unknown_filter"
    assert error.extra["parameter"] == key


@given(
    name=st.sampled_from(sorted(SPEC.filters)),
    op=text.filter(bool),
    value=text,
    others=valid_filters(),
)
@example(name="is_active", op="icontains", value="t", others={})
@example(name="email", op="lt", value="m", others={})
def test_undeclared_operator_is_rejected_naming_the_parameter(
    name: str, op: str, value: str, others: dict[str, str]
) -> None:
    if op in SPEC.filters[name].ops:
        return
    key = f"{name}__{op}"
    error = rejects({**others, key: value})
    assert error.code == "unknown_filter_operator"
    assert error.extra["parameter"] == key


def test_filter_with_an_empty_operator_is_rejected() -> None:
    """`email__` is neither `field` nor `field__op`: it is not a declared parameter."""
    error = rejects({"email__": "a@example.com"})
    assert error.extra["parameter"] == "email__"


sort_keys = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters=",\x00"), min_size=1, max_size=20
).filter(lambda key: key == key.strip() and not key.startswith("-") and key not in SPEC.sortable)


@pytest.mark.parametrize("sort", [",", "email,", ",email", "email,,id", " , "])
def test_sort_with_an_empty_field_is_rejected(sort: str) -> None:
    """The document's `sort` is a list of field names: an empty one is not among them."""
    error = rejects({"sort": sort})
    assert (error.code, error.extra["parameter"]) == ("unknown_sort_field", "sort")


@given(
    key=sort_keys,
    desc=st.booleans(),
    before=sort_items,
    after=sort_items,
)
@example(key="password_hash", desc=False, before=[], after=[])
@example(key="EMAIL", desc=True, before=[("id", False)], after=[])
def test_undeclared_sort_key_is_rejected(
    key: str, desc: bool, before: list[tuple[str, bool]], after: list[tuple[str, bool]]
) -> None:
    items = [f"-{n}" if d else n for n, d in before]
    items += [f"-{key}" if desc else key]
    items += [f"-{n}" if d else n for n, d in after]
    error = rejects({"sort": ",".join(items)})
    assert error.code == "unknown_sort_field"
    assert error.extra["parameter"] == "sort"


@pytest.mark.parametrize("sort", ["--email", "-", "email,-"])
def test_sort_key_with_a_doubled_or_bare_minus_is_rejected(sort: str) -> None:
    """Only one leading `-` means descending; what remains must be a sortable name."""
    error = rejects({"sort": sort})
    assert error.code == "unknown_sort_field"


@given(limit=st.integers().filter(lambda n: not 1 <= n <= MAX_LIMIT))
@example(limit=0)
@example(limit=MAX_LIMIT + 1)
def test_limit_outside_1_to_100_is_rejected(limit: int) -> None:
    error = rejects({"limit": str(limit)})
    assert error.code == "invalid_query_parameter"
    assert error.extra["parameter"] == "limit"


def _not_an_int(raw: str) -> bool:
    try:
        int(raw)
    except ValueError:
        return True
    return False


@given(raw=text.filter(_not_an_int), name=st.sampled_from(["limit", "offset"]))
def test_non_integer_limit_or_offset_is_rejected(raw: str, name: str) -> None:
    error = rejects({name: raw})
    assert error.extra["parameter"] == name


@given(offset=st.integers(max_value=-1))
def test_negative_offset_is_rejected(offset: int) -> None:
    error = rejects({"offset": str(offset)})
    assert error.extra["parameter"] == "offset"


@given(
    name=st.sampled_from(["role", "is_active", "created_at"]),
    raw=st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        min_size=1,
        max_size=12,
    ),
)
def test_unparsable_filter_value_is_rejected_naming_the_parameter(name: str, raw: str) -> None:
    parse = SPEC.filters[name].parse
    try:
        parse(raw)
    except ValueError:
        pass
    else:
        return  # a valid value is the other property's business
    error = rejects({name: raw})
    assert error.code == "invalid_query_parameter"
    assert error.extra["parameter"] == name


@given(key=text, value=text, where=st.sampled_from(["key", "value"]))
def test_a_nul_anywhere_is_refused_first(key: str, value: str, where: str) -> None:
    if where == "key":
        key += "\x00"
    else:
        value += "\x00"
    error = rejects({key: value})
    assert error.code == "invalid_query_parameter"


# --- caps and the dependency --------------------------------------------------------------


def test_sort_terms_up_to_the_cap_parse_and_one_more_is_refused() -> None:
    terms = ["id", "-email", "created_at", "-id", "email"][:MAX_SORT_TERMS]
    assert len(parse_list_query({"sort": ",".join(terms)}, SPEC).order_by) == MAX_SORT_TERMS

    error = rejects({"sort": ",".join([*terms, "id"])})
    assert error.code == "too_many_sort_fields"
    assert error.extra["parameter"] == "sort"


def test_filters_up_to_the_cap_parse_and_one_more_is_refused() -> None:
    wide = ListSpec(
        filters={f"f{n}": Filter(User.email) for n in range(MAX_FILTERS + 5)},
        sortable={"id": User.id},
        default_sort=("id",),
    )
    params = {f"f{n}": "x" for n in range(MAX_FILTERS + 5)}
    allowed = dict(list(params.items())[:MAX_FILTERS])
    assert len(parse_list_query(allowed, wide).where) == MAX_FILTERS

    with pytest.raises(BadListQuery) as caught:
        parse_list_query(params, wide)
    assert caught.value.code == "too_many_filters"
    assert caught.value.extra["parameter"] == f"f{MAX_FILTERS}"


def test_repeated_sort_and_in_parameters_mean_their_comma_separated_form() -> None:
    query_string = b"sort=email&sort=-id&role__in=admin&role__in=waiter&limit=5&limit=7"
    request = Request({"type": "http", "query_string": query_string, "headers": []})

    query = list_query(SPEC)(request)

    assert [str(clause).rsplit(".", 1)[-1] for clause in query.order_by] == ["email ASC", "id DESC"]
    assert set(query.where[0].right.value) == {Role.ADMIN, Role.WAITER}  # type: ignore[attr-defined]
    assert query.limit == 7


@pytest.mark.parametrize(
    ("raw", "edge"),
    [
        ("9999-12-31T23:59:59-01:00", dt.datetime.max),
        ("0001-01-01T00:00:00+01:00", dt.datetime.min),
    ],
)
def test_a_date_time_beyond_the_calendar_in_utc_is_its_edge(raw: str, edge: dt.datetime) -> None:
    """Every RFC 3339 date-time is a valid bound; past the calendar it cannot overflow."""
    assert parse_datetime(raw) == edge.replace(tzinfo=dt.UTC)
    assert len(parse_list_query({"created_at__gt": raw}, SPEC).where) == 1
