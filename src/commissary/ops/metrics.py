"""``GET /metrics``: the Prometheus exposition of the request metrics (``core.metrics``) and
of the figures read at scrape time: queues, failed jobs, the outbox backlog."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from commissary.core.deps import RuntimeDep, SessionDep
from commissary.core.errors import Forbidden
from commissary.models import Role
from commissary.ops.queues import Snapshot
from commissary.users.dependencies import BearerToken, current_user


class SnapshotCollector(Collector):
    """Gauges of one queue snapshot, taken (asynchronously) just before the scrape."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauges = {
            "depth": ("commissary_queue_depth", "Jobs waiting in the queue."),
            "running": ("commissary_queue_running", "Jobs running now."),
            "scheduled": ("commissary_queue_scheduled", "Jobs scheduled for later."),
            "failed": ("commissary_queue_failed_jobs", "Failed jobs kept for a requeue."),
            "workers": ("commissary_queue_workers", "Workers serving the queue."),
        }
        for attribute, (name, documentation) in gauges.items():
            family = GaugeMetricFamily(name, documentation, labels=["queue"])
            for queue in self.snapshot.queues:
                family.add_metric([queue.name], getattr(queue, attribute))
            yield family
        yield GaugeMetricFamily(
            "commissary_outbox_backlog",
            "Jobs recorded in the outbox and not done yet (queued, running or to be relayed).",
            value=self.snapshot.outbox_backlog,
        )
        yield GaugeMetricFamily(
            "commissary_outbox_given_up",
            "Outbox jobs the relay gave up on (listed by GET /api/v1/ops/queues).",
            value=self.snapshot.outbox_given_up,
        )


async def metrics_reader(
    request: Request, runtime: RuntimeDep, session: SessionDep, token: BearerToken
) -> None:
    """A scraper with ``METRICS_TOKEN`` as its bearer token, or a signed-in admin."""
    expected = runtime.settings.metrics_token
    if (
        token
        and expected is not None
        and secrets.compare_digest(token.encode(), expected.get_secret_value().encode())
    ):
        return
    user = await current_user(request, session, token)
    if user.role is not Role.ADMIN:
        raise Forbidden("metrics are for admins and the METRICS_TOKEN scraper")


MetricsReader = Annotated[None, Depends(metrics_reader)]
