"""Where the jobs live and which run periodically."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from commissary.config import Settings
from commissary.core import jobs
from commissary.core.runtime import Runtime

log = structlog.get_logger(__name__)

JOB_MODULES = (
    "commissary.users.jobs",
    "commissary.ops.jobs",
    "commissary.orders.jobs",
    "commissary.notifications.jobs",
    "commissary.core.idempotency",
    "commissary.events.sequencer",
)


@dataclass(frozen=True)
class Periodic:
    name: str
    every: Callable[[Settings], int]


PERIODIC = (
    Periodic("orders.sweep", lambda s: s.order_sweep_interval),
    Periodic("events.sequence", lambda s: s.event_sequence_interval),
    Periodic("ops.relay_outbox", lambda s: s.outbox_relay_interval),
    Periodic("users.purge_unverified", lambda s: s.purge_interval),
    Periodic("idempotency.purge", lambda s: s.idempotency_purge_interval),
)


def load() -> None:
    """Import every module that registers jobs, so any process can run any job."""
    for module in JOB_MODULES:
        importlib.import_module(module)


async def run_periodic_inline(runtime: Runtime, tick: float = 1.0) -> None:
    """Embedded mode's scheduler: run each periodic job on its interval, in this process."""
    next_run = {p.name: time.monotonic() + min(5, p.every(runtime.settings)) for p in PERIODIC}
    while True:
        await asyncio.sleep(tick)
        for periodic in PERIODIC:
            if time.monotonic() < next_run[periodic.name]:
                continue
            next_run[periodic.name] = time.monotonic() + periodic.every(runtime.settings)
            try:
                await jobs.execute(runtime, periodic.name, None, {})
            except Exception:
                log.exception("periodic_job_failed", job=periodic.name)
