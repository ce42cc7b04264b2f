"""Opening hours: pure rules, no I/O.

``opening_hours`` maps a weekday (``mon`` .. ``sun``) to ranges ``{"open": "HH:MM", "close":
"HH:MM"}`` in the restaurant's local time. A range covers ``open`` up to, not including,
``close``; a ``close`` at or before ``open`` runs past midnight into the next day. An empty
mapping means always open; a weekday that is missing or has no ranges is closed all day
(apart from the tail of the previous day's range that crosses midnight).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_valid_timezone(name: str) -> bool:
    """An IANA zone name this system knows (``Europe/Paris``, ``UTC``)."""
    return name in _zones()


def _time(raw: str) -> dt.time:
    return dt.time.fromisoformat(raw)


def _ranges(opening_hours: Mapping[str, Any], day: int) -> list[tuple[dt.time, dt.time]]:
    return [(_time(r["open"]), _time(r["close"])) for r in opening_hours.get(WEEKDAYS[day], ())]


def is_open(opening_hours: dict[str, Any], timezone: str, at: dt.datetime) -> bool:
    """Whether the hours cover ``at`` (timezone-aware), read in the restaurant's ``timezone``."""
    if not opening_hours:
        return True
    local = at.astimezone(ZoneInfo(timezone))
    now, today = local.time(), local.weekday()
    for open_, close in _ranges(opening_hours, today):
        crosses_midnight = close <= open_
        if open_ <= now and (crosses_midnight or now < close):
            return True
    yesterday = (today - 1) % 7
    return any(close <= open_ and now < close for open_, close in _ranges(opening_hours, yesterday))


def next_change(
    opening_hours: dict[str, Any], timezone: str, at: dt.datetime
) -> dt.datetime | None:
    """The first instant after ``at`` at which :func:`is_open` answers otherwise, in the
    restaurant's ``timezone``; None when it never changes (always open, or never open).

    ``is_open`` reads the local wall clock, which moves evenly except at a change of UTC
    offset (daylight saving). So its answer can only change where the clock shows a range's
    ``open`` or ``close`` - under either offset when that local time occurs twice - or where
    the offset changes and the clock jumps over or back across a boundary. Those instants,
    over the week and a day around ``at``, are the candidates; the first one where the answer
    differs is the change."""
    if not opening_hours:
        return None
    zone = ZoneInfo(timezone)
    now = is_open(opening_hours, timezone, at)
    for candidate in _candidates(opening_hours, zone, at):
        if is_open(opening_hours, timezone, candidate) != now:
            return candidate.astimezone(zone)
    return None


def _candidates(
    opening_hours: Mapping[str, Any], zone: ZoneInfo, at: dt.datetime
) -> list[dt.datetime]:
    utc = dt.UTC
    start = at.astimezone(zone).date() - dt.timedelta(days=1)
    found: set[dt.datetime] = set()
    for offset in range(10):
        day = start + dt.timedelta(days=offset)
        for open_, close in _ranges(opening_hours, day.weekday()):
            for moment in (open_, close):
                local = dt.datetime.combine(day, moment)
                if moment == close and close <= open_:
                    local += dt.timedelta(days=1)
                for fold in (0, 1):
                    found.add(local.replace(tzinfo=zone, fold=fold).astimezone(utc))
        found.update(_offset_changes(zone, day))
    return sorted(c for c in found if c > at)


def _offset_changes(zone: ZoneInfo, day: dt.date) -> list[dt.datetime]:
    """The instants during local ``day`` (give or take its ends) where the UTC offset
    changes, to the second."""
    low = dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC) - dt.timedelta(
        hours=3
    )
    high = low + dt.timedelta(hours=30)
    if low.astimezone(zone).utcoffset() == high.astimezone(zone).utcoffset():
        return []
    lo, hi = int(low.timestamp()), int(high.timestamp())
    before = low.astimezone(zone).utcoffset()
    while hi - lo > 1:  # the first second whose offset differs from ``before``
        mid = (lo + hi) // 2
        if dt.datetime.fromtimestamp(mid, zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return [dt.datetime.fromtimestamp(hi, dt.UTC)]
