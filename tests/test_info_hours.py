"""When a location opens or closes next: ``next_change`` against ``is_open`` itself, across
midnight and daylight-saving changes (gaps, repeated hours, half-hour shifts)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from commissary.catalog.hours import is_open, next_change
from tests.test_hours import DAY, schedule

# Zones with daylight saving time of every shape: the usual hour, a half-hour shift
# (Lord Howe), the southern hemisphere, a 45-minute offset, and none at all.
DST_ZONES = [
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Kolkata",
    "UTC",
]
# Near the 2026 changes of those zones, and ordinary days in between.
AROUND = [
    dt.datetime(2026, 3, 29, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 25, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 8, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    dt.datetime(2026, 4, 5, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 4, tzinfo=dt.UTC),
    dt.datetime(2026, 9, 27, tzinfo=dt.UTC),
    dt.datetime(2026, 9, 6, tzinfo=dt.UTC),
    dt.datetime(2026, 6, 15, tzinfo=dt.UTC),
]

# Whole minutes and half hours, as restaurants write them, so ranges hit the DST gaps.
minutes = st.one_of(
    st.integers(0, 47).map(lambda n: n * 30), st.integers(min_value=0, max_value=DAY - 1)
)
ranges = st.tuples(minutes, minutes).filter(lambda r: r[0] != r[1])
schedules = st.dictionaries(
    st.integers(min_value=0, max_value=6), st.lists(ranges, min_size=0, max_size=4), max_size=7
).map(schedule)
instants = st.builds(
    lambda base, seconds, micros: base + dt.timedelta(seconds=seconds, microseconds=micros),
    st.sampled_from(AROUND),
    st.integers(-3 * 86400, 3 * 86400),
    st.integers(0, 999_999),
)


@given(schedules, st.sampled_from(DST_ZONES), instants, st.floats(0, 1, exclude_max=True))
def test_next_change_is_the_first_instant_the_answer_flips(
    hours: dict[str, Any], zone: str, at: dt.datetime, fraction: float
) -> None:
    change = next_change(hours, zone, at)
    now = is_open(hours, zone, at)
    if change is None:
        # Never flips: the answer holds over the coming week, every 7 minutes.
        assert all(
            is_open(hours, zone, at + dt.timedelta(minutes=7 * k)) == now for k in range(1441)
        )
        return
    assert change.tzinfo is not None and change.utcoffset() == ZoneInfo(zone).utcoffset(change)
    # Arithmetic in UTC: on a zone's datetime Python adds to the wall clock.
    change = change.astimezone(dt.UTC)
    assert at < change <= at + dt.timedelta(days=8)
    assert is_open(hours, zone, change) != now
    assert is_open(hours, zone, change - dt.timedelta(microseconds=1)) == now
    between = min(at + (change - at) * fraction, change - dt.timedelta(microseconds=1))
    assert is_open(hours, zone, between) == now


@given(schedules, st.sampled_from(DST_ZONES), instants)
def test_following_the_changes_walks_through_alternating_states(
    hours: dict[str, Any], zone: str, at: dt.datetime
) -> None:
    state = is_open(hours, zone, at)
    for _ in range(4):
        change = next_change(hours, zone, at)
        if change is None:
            return
        assert is_open(hours, zone, change) != state
        at, state = change.astimezone(dt.UTC), not state


def local(zone: str, *args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[misc]


def test_a_range_across_midnight_closes_the_next_morning() -> None:
    hours = {"fri": [{"open": "22:00", "close": "02:00"}]}
    friday_night = local("Europe/Paris", 2026, 12, 4, 23, 0)
    change = next_change(hours, "Europe/Paris", friday_night)
    assert change == local("Europe/Paris", 2026, 12, 5, 2, 0)
    assert change is not None and change.isoformat() == "2026-12-05T02:00:00+01:00"
    # Closed on saturday at 03:00: next opening is the following friday at 22:00.
    later = next_change(hours, "Europe/Paris", change)
    assert later == local("Europe/Paris", 2026, 12, 11, 22, 0)


def test_an_opening_inside_the_spring_gap_happens_when_the_clocks_jump() -> None:
    # 2026-03-29 in Paris: 02:00 becomes 03:00; a shop opening at 02:30 opens at 03:00.
    hours = {"sun": [{"open": "02:30", "close": "05:00"}]}
    change = next_change(hours, "Europe/Paris", local("Europe/Paris", 2026, 3, 29, 1, 30))
    assert change == dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.UTC)
    assert change is not None and change.isoformat() == "2026-03-29T03:00:00+02:00"


def test_a_closing_in_the_repeated_autumn_hour_comes_first_at_its_first_occurrence() -> None:
    # 2026-10-25 in Paris: 03:00 becomes 02:00 again; 02:30 happens twice. (Compared in UTC:
    # PEP 495 makes a time in the repeated hour unequal to any instant of another zone.)
    hours = {"sun": [{"open": "01:00", "close": "02:30"}]}
    first_pass = local("Europe/Paris", 2026, 10, 25, 2, 15)
    change = next_change(hours, "Europe/Paris", first_pass)
    assert change is not None and change.isoformat() == "2026-10-25T02:30:00+02:00"
    assert change.astimezone(dt.UTC) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)
    # Once the clock has gone back to 02:00 the hours read as open again, until 02:30.
    reopening = next_change(hours, "Europe/Paris", change)
    assert reopening is not None and reopening.isoformat() == "2026-10-25T02:00:00+01:00"
    closing = next_change(hours, "Europe/Paris", reopening)
    assert closing is not None and closing.isoformat() == "2026-10-25T02:30:00+01:00"


def test_always_open_and_never_open_have_no_next_change() -> None:
    at = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
    assert next_change({}, "Europe/Paris", at) is None
    assert next_change({"mon": []}, "Europe/Paris", at) is None
    all_day = [{"open": "00:00", "close": "12:00"}, {"open": "12:00", "close": "00:00"}]
    every_day = dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), all_day)
    assert next_change(every_day, "America/New_York", at) is None
