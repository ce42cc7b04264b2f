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
