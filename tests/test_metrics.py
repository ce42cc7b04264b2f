"""GET /metrics: Prometheus text for admins and the METRICS_TOKEN scraper; requests counted
by route template (never the raw path) and status, queue and outbox figures read at scrape
time, open WebSocket connections; on both modes."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from commissary.core.db import commit
from commissary.models import OutboxJob, Role
from tests.conftest import Backend, MakeUser
from tests.menu import make_menu

METRICS = "/metrics"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    answer = await client.get(METRICS, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    menu = await make_menu(backend)
    before = await scrape(client, admin.headers)
    order = {"method": "GET", "route": "/api/v1/orders/{order_id}", "status": "404"}
    product = {"method": "GET", "route": "/api/v1/products/{product_id}", "status": "200"}
    for order_id in (987654, 987655):
        assert (
            await client.get(f"/api/v1/orders/{order_id}", headers=admin.headers)
        ).status_code == 404
    for _ in range(3):  # a miss, then hits answered before routing: the same template
        assert (await client.get(f"/api/v1/products/{menu.soup.id}")).status_code == 200
    assert (await client.get("/no/such/page/42")).status_code == 404
    after = await scrape(client, admin.headers)
    counter = "commissary_http_requests_total"
    assert value(after, counter, **order) - value(before, counter, **order) == 2
    assert value(after, counter, **product) - value(before, counter, **product) == 3
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, counter, **unmatched) - value(before, counter, **unmatched) == 1
    latency = "commissary_http_request_duration_seconds_count"
    route = {"method": "GET", "route": "/api/v1/orders/{order_id}"}
    assert value(after, latency, **route) - value(before, latency, **route) == 2
    assert "987654" not in after and "/no/such" not in after


async def test_only_admins_and_the_scraper_token_read_metrics(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    assert (await client.get(METRICS)).status_code == 401
    sales = await make_user(Role.SALES)
    assert (await client.get(METRICS, headers=sales.headers)).status_code == 403
    token = secrets.token_urlsafe(32)
    wrong = {"Authorization": "Bearer " + secrets.token_urlsafe(32)}
    assert (
        await client.get(METRICS, headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401
    settings = backend.runtime.settings
    backend.runtime.settings = settings.model_copy(update={"metrics_token": SecretStr(token)})
    try:
        await scrape(client, {"Authorization": f"Bearer {token}"})
        assert (await client.get(METRICS, headers=wrong)).status_code == 401
    finally:
        backend.runtime.settings = settings


async def test_queue_outbox_and_websocket_figures(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    queue = "inline" if backend.redis is None else "commissary"
    async with backend.runtime.sessionmaker() as session:
        now = dt.datetime.now(dt.UTC)
        session.add(OutboxJob(name="ops.relay_outbox", payload={}, failed_at=now, relayed=20))
        session.add(OutboxJob(name="ops.relay_outbox", payload={}))
        await commit(session)
    hub = backend.runtime.realtime
    connections = value(await scrape(client, admin.headers), "commissary_websocket_connections")
    subscriber = hub.connect()
    try:
        text = await scrape(client, admin.headers)
    finally:
        hub.disconnect(subscriber)
    assert value(text, "commissary_websocket_connections") == connections + 1
    assert value(text, "commissary_outbox_backlog") == 1
    assert value(text, "commissary_outbox_given_up") == 1
    assert ("commissary_queue_depth", frozenset({("queue", queue)})) in samples(text)
    if backend.redis is None:
        assert value(text, "commissary_queue_failed_jobs", queue=queue) == 1
    after = await scrape(client, admin.headers)
    assert value(after, "commissary_websocket_connections") == connections


@pytest.mark.parametrize("token", ["short", ""])
def test_a_short_metrics_token_is_refused_at_start(token: str) -> None:
    from commissary.config import Settings

    if not token:
        assert Settings(_env_file=None, metrics_token=token).metrics_token is None  # type: ignore[call-arg]
        return
    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        Settings(_env_file=None, metrics_token=token)  # type: ignore[call-arg]


COUNT_IN_A_PROCESS = """
from fastapi import FastAPI
from commissary.core import metrics
app = FastAPI()
app.get("/api/v1/products/{product_id}")(lambda product_id: None)
scope = {"type": "http", "method": "GET", "path": "/api/v1/products/7", "app": app}
metrics.observe_request(scope, 200, 0.01)
"""
SCRAPE = "from commissary.core import metrics; print(metrics.exposition().decode())"


def test_several_processes_are_added_up_in_multiprocess_mode(tmp_path: Path) -> None:
    """`serve --workers N` shares PROMETHEUS_MULTIPROC_DIR: a scrape answered by any
    process counts the requests of all of them."""
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    for _ in range(2):
        subprocess.run([sys.executable, "-c", COUNT_IN_A_PROCESS], env=env, check=True)
    text = subprocess.run(
        [sys.executable, "-c", SCRAPE], env=env, check=True, capture_output=True, text=True
    ).stdout
    labels = {"method": "GET", "route": "/api/v1/products/{product_id}", "status": "200"}
    assert value(text, "commissary_http_requests_total", **labels) == 2
