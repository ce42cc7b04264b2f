"""Usage counts of the API keys: counted in the process that serves each request, written
to ``api_key_usage`` in one transaction every ``API_KEY_USAGE_FLUSH_INTERVAL`` seconds and
at shutdown, so a key request costs no write of its own. What a process has not written yet
is added to what ``GET /api-keys/{key_id}`` shows from the database."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import defaultdict

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from commissary.apikeys import repository as repo

log = structlog.get_logger(__name__)

Day = tuple[int, str, dt.date]  # key id, secret hash, UTC day


class UsageRecorder:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], interval: float) -> None:
        self._sessionmaker = sessionmaker
        self._interval = interval
        self._counts: defaultdict[Day, list[int]] = defaultdict(lambda: [0, 0])
        self._used: dict[tuple[int, str], dt.datetime] = {}
        # Taken for writing and not yet committed: still shown, put back if the write fails.
        self._writing: dict[Day, list[int]] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, key_id: int, secret_hash: str, at: dt.datetime, *, refused: bool) -> None:
        counts = self._counts[key_id, secret_hash, at.date()]
        counts[1 if refused else 0] += 1
        if not refused:
            self._used[key_id, secret_hash] = at

    def pending(self, key_id: int, secret_hash: str, day: dt.date) -> tuple[int, int, int]:
        """(requests on ``day``, refused on ``day``, requests in all) not yet written."""
        today = refused = total = 0
        for counts in (self._counts, self._writing):
            for (kid, khash, kday), (requests, refusals) in counts.items():
                if kid != key_id or khash != secret_hash:
                    continue
                total += requests
                if kday == day:
                    today, refused = today + requests, refused + refusals
        return today, refused, total

    async def flush(self) -> None:
        """Write what was counted since the last flush; on failure keep it for the next."""
        if not self._counts and not self._used:
            return
        self._writing, self._counts = dict(self._counts), defaultdict(lambda: [0, 0])
        used, self._used = self._used, {}
        counts = [
            {"key_id": kid, "hash": khash, "day": day, "requests": n, "refused": r}
            for (kid, khash, day), (n, r) in self._writing.items()
        ]
        touched = [{"key_id": k, "hash": h, "used_at": at} for (k, h), at in used.items()]
        try:
            async with self._sessionmaker() as session:
                await repo.add_usage(session, counts, touched)
                await session.commit()
        except Exception:
            for day, (n, r) in self._writing.items():
                self._counts[day][0] += n
                self._counts[day][1] += r
            for key, at in used.items():
                self._used.setdefault(key, at)
            raise
        finally:
            self._writing = {}

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:
                log.exception("api_key_usage_flush_failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        except Exception:
            log.exception("api_key_usage_flush_failed")
