"""Opening hours: ``is_open`` against a minute-of-week model of the schedule."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from commissary.catalog.hours import WEEKDAYS, is_open

DAY, WEEK = 24 * 60, 7 * 24 * 60
MONDAY = dt.datetime(2024, 1, 1)  # a Monday
# Zones without daylight saving time, so every local time maps to one instant.
FIXED_ZONES = ["UTC", "Etc/GMT+12", "Etc/GMT-14", "Asia/Kolkata", "Asia/Tokyo", "America/Panama"]

minutes = st.integers(min_value=0, max_value=DAY - 1)
ranges = st.tuples(minutes, minutes).filter(lambda r: r[0] != r[1])
zones = st.sampled_from(FIXED_ZONES)
weeks = st.integers(min_value=0, max_value=300)


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def schedule(days: dict[int, list[tuple[int, int]]]) -> dict[str, Any]:
    return {
        WEEKDAYS[d]: [{"open": hhmm(o), "close": hhmm(c)} for o, c in spans]
        for d, spans in days.items()
    }


def covered(days: dict[int, list[tuple[int, int]]]) -> set[int]:
    """Minutes of the week the schedule covers; a range's length wraps past midnight."""
    out: set[int] = set()
    for day, spans in days.items():
        for open_, close in spans:
            start = day * DAY + open_
            out.update((start + k) % WEEK for k in range((close - open_) % DAY))
    return out


def instant(week: int, minute_of_week: int, second: int, zone: str) -> dt.datetime:
    """The UTC instant at that local minute of the ``week``-th week after 2024-01-01."""
    local = MONDAY + dt.timedelta(weeks=week, minutes=minute_of_week, seconds=second)
    return local.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


schedules = st.dictionaries(
    st.integers(min_value=0, max_value=6), st.lists(ranges, min_size=1, max_size=6), max_size=7
)
single_range_schedules = st.dictionaries(
    st.integers(min_value=0, max_value=6), st.lists(ranges, min_size=1, max_size=1), min_size=1
)


@given(schedules, zones, weeks, st.integers(0, 59), st.data())
def test_a_time_inside_any_declared_range_is_open(
    days: dict[int, list[tuple[int, int]]], zone: str, week: int, second: int, data: st.DataObject
) -> None:
    assume(days)
    day = data.draw(st.sampled_from(sorted(days)))
    open_, close = data.draw(st.sampled_from(days[day]))
    offset = data.draw(st.integers(0, (close - open_) % DAY - 1))  # may cross midnight
    at = instant(week, day * DAY + open_ + offset, second, zone)
    assert is_open(schedule(days), zone, at)


@given(single_range_schedules, zones, weeks, st.integers(0, 59), st.data())
def test_with_one_range_a_day_a_time_outside_every_range_is_closed(
    days: dict[int, list[tuple[int, int]]], zone: str, week: int, second: int, data: st.DataObject
) -> None:
    outside = sorted(set(range(WEEK)) - covered(days))
    assume(outside)
    minute = data.draw(st.sampled_from(outside))
    assert not is_open(schedule(days), zone, instant(week, minute, second, zone))


@given(schedules, zones, weeks, st.integers(0, WEEK - 1), st.integers(0, 59))
def test_is_open_matches_the_minutes_the_schedule_covers(
    days: dict[int, list[tuple[int, int]]], zone: str, week: int, minute: int, second: int
) -> None:
    expected = not days or minute in covered(days)
    assert is_open(schedule(days), zone, instant(week, minute, second, zone)) is expected


@given(
    st.datetimes(
        min_value=dt.datetime(1990, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    st.sampled_from([*FIXED_ZONES, "Europe/Paris", "America/New_York", "Australia/Lord_Howe"]),
)
def test_empty_hours_are_always_open(at: dt.datetime, zone: str) -> None:
    assert is_open({}, zone, at)


@given(
    st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)),
    st.times(min_value=dt.time(9, 0), max_value=dt.time(14, 59, 59)),
)
def test_the_same_instant_is_open_in_one_zone_and_closed_in_another(
    day: dt.date, time: dt.time
) -> None:
    every_day = {d: [{"open": "09:00", "close": "17:00"}] for d in WEEKDAYS}
    at = dt.datetime.combine(day, time, tzinfo=dt.UTC)
    assert is_open(every_day, "UTC", at)
    assert not is_open(every_day, "Etc/GMT-9", at)  # UTC+9: 18:00 to 23:59 there


LATE_FRIDAY = {"fri": [{"open": "22:00", "close": "02:00"}]}
SPLIT_TUESDAY = {"tue": [{"open": "08:00", "close": "11:30"}, {"open": "18:00", "close": "23:00"}]}


@pytest.mark.parametrize(
    ("hours", "zone", "at", "expected"),
    [
        (LATE_FRIDAY, "UTC", "2024-01-06T01:00:00+00:00", True),  # saturday after midnight
        (LATE_FRIDAY, "UTC", "2024-01-05T23:59:59+00:00", True),
        (LATE_FRIDAY, "UTC", "2024-01-06T02:00:00+00:00", False),  # close is exclusive
        (LATE_FRIDAY, "UTC", "2024-01-05T21:59:00+00:00", False),
        (LATE_FRIDAY, "UTC", "2024-01-07T01:00:00+00:00", False),  # sunday: saturday has none
        (LATE_FRIDAY, "Europe/Paris", "2024-01-06T00:30:00+00:00", True),  # 01:30 in Paris
        (LATE_FRIDAY, "Europe/Paris", "2024-01-05T21:30:00+00:00", True),  # 22:30 in Paris
        (LATE_FRIDAY, "America/New_York", "2024-01-06T01:00:00+00:00", False),  # 20:00 fri
        (SPLIT_TUESDAY, "UTC", "2024-01-02T12:00:00+00:00", False),  # between the two ranges
        (SPLIT_TUESDAY, "UTC", "2024-01-02T18:00:00+00:00", True),
        (SPLIT_TUESDAY, "UTC", "2024-01-02T11:30:00+00:00", False),  # close is exclusive
        ({"sun": [{"open": "23:00", "close": "00:00"}]}, "UTC", "2024-01-08T00:00:00+00:00", False),
        ({"sun": [{"open": "23:00", "close": "01:00"}]}, "UTC", "2024-01-08T00:30:00+00:00", True),
        # Paris moves to summer time on 2024-03-31: 08:30 UTC is 10:30 local, not 09:30.
        (
            {"sun": [{"open": "10:00", "close": "11:00"}]},
            "Europe/Paris",
            "2024-03-31T08:30:00+00:00",
            True,
        ),
        (
            {"sun": [{"open": "10:00", "close": "11:00"}]},
            "Europe/Paris",
            "2024-03-24T08:30:00+00:00",
            False,
        ),
        ({"mon": []}, "UTC", "2024-01-01T12:00:00+00:00", False),  # a listed day with no ranges
    ],
)
def test_examples(hours: dict[str, Any], zone: str, at: str, expected: bool) -> None:
    assert is_open(hours, zone, dt.datetime.fromisoformat(at)) is expected
