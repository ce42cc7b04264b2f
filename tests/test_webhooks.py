"""Webhooks: a developer's receivers, deliveries of the order events they may see to a real
HTTP server on loopback, signed as Standard Webhooks (checked here by an independent
implementation), retried with backoff, logged, replayed; receivers on private addresses
refused (SSRF), at creation and at delivery."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from commissary import worker
from commissary.config import Settings
from commissary.core.db import commit
from commissary.events import sequencer
from commissary.events.sequencer import StreamEvent
from commissary.models import AuditLog, OrderEvent, Role
from commissary.webhooks import service, urls
from tests.conftest import Account, Backend, MakeUser, make_settings
from tests.menu import make_menu
from tests.servers import free_port
from tests.test_orders import ORDERS
from tests.test_orders import body as order_body

BASE = "/api/v1/webhooks"


# --- A receiver: a real HTTP server on loopback --------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # The status of each next answer; 200 once they are used up. A 3xx redirects to /moved.
    answers: list[int] = field(default_factory=list)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            receiver.requests.append(
                Received({k.lower(): v for k, v in self.headers.items()}, body)
            )
            code = receiver.answers.pop(0) if receiver.answers else 200
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("Location", "/moved")
            answer = b"receiver says no" if code >= 300 else b"ok"
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(box))
    box.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()


# --- Settings of the API and of the RQ worker, changed for one test --------------------------


async def _use(backend: Backend, settings: Settings) -> None:
    backend.runtime.settings = settings
    if backend._executor is not None:  # the RQ worker builds its runtime from these again
        worker.use_settings(settings)
        await asyncio.get_running_loop().run_in_executor(backend._executor, worker.close_context)


@contextlib.asynccontextmanager
async def settings_changed(backend: Backend, **changes: Any) -> AsyncIterator[Settings]:
    changed = backend.settings.model_copy(update=changes)
    await _use(backend, changed)
    try:
        yield changed
    finally:
        await _use(backend, backend.settings)


@pytest.fixture
async def loopback(backend: Backend) -> AsyncIterator[Settings]:
    """Receivers on loopback accepted (the test's receiver lives there); a failed try is
    retried at once, so the real queue drives the retries without waiting."""
    async with settings_changed(
        backend, webhook_allow_loopback=True, webhook_retry_backoff=[0, 0, 0]
    ) as settings:
        yield settings


# --- Helpers ---------------------------------------------------------------------------------


def event(
    position: int, type_: str = "created", customer_id: int | None = None, **extra: Any
) -> StreamEvent:
    values: dict[str, Any] = {
        "id": position,
        "order_id": 100 + position,
        "sequence": 1,
        "type": type_,
        "from_status": None,
        "to_status": "pending" if type_ == "created" else None,
        "actor": "customer",
        "actor_id": customer_id,
        "data": None,
        "created_at": dt.datetime(2026, 12, 6, 12, 0, position, tzinfo=dt.UTC),
        "restaurant_id": 1,
        "customer_id": customer_id,
        "courier_id": None,
        "waiter_id": None,
        "fulfillment": "delivery",
        "total": Decimal("12.50"),
        "currency": "EUR",
        **extra,
    }
    return StreamEvent(**values)


async def sequenced(backend: Backend, *events: StreamEvent) -> None:
    """What the sequencer does with a batch of newly positioned events: run the hooks in its
    transaction, then commit (which sends the jobs they enqueued)."""
    async with backend.runtime.sessionmaker() as session:
        await service.record_deliveries(session, events)
        await commit(session)


async def create(
    client: httpx.AsyncClient, account: Account, url: str, types: list[str] | None = None
) -> dict[str, Any]:
    response = await client.post(
        BASE, json={"url": url, "event_types": types or ["*"]}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def deliveries(
    client: httpx.AsyncClient, account: Account, webhook_id: int, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{BASE}/{webhook_id}/deliveries", params=params, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def verify(secret: str, request: Received) -> dict[str, Any]:
    """Standard Webhooks' check, written from the specification: base64 HMAC-SHA256, keyed
    with the base64-decoded secret, over "{webhook-id}.{webhook-timestamp}.{body}"."""
    msg_id, timestamp = request.headers["webhook-id"], request.headers["webhook-timestamp"]
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1) for s in request.headers["webhook-signature"].split()]
    assert any(v == "v1" and hmac.compare_digest(sig, expected) for v, sig in offered)
    assert abs(time.time() - int(timestamp)) < 300
    return dict(json.loads(request.body))


# --- Managing webhooks -----------------------------------------------------------------------


async def test_an_order_placed_and_cooked_reaches_the_webhook_event_by_event(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    loopback: Settings,
    receiver: Receiver,
) -> None:
    """End to end: placement and the worker write order events, the sequencer gives them
    positions and runs the hook, and the jobs deliver each one."""
    menu = await make_menu(backend)
    admin, hero = await make_user(Role.ADMIN), await make_user()
    hook = await create(client, admin, receiver.url)
    placed = await client.post(ORDERS, json=order_body((menu.soup.id, 1)), headers=hero.headers)
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]
    await backend.settle()
    await backend.run_job(sequencer.SEQUENCE_JOB)  # as the periodic sweep would
    await backend.settle()

    async with backend.runtime.sessionmaker() as session:
        rows = await session.execute(
            select(OrderEvent.position, OrderEvent.type)
            .where(OrderEvent.order_id == order_id)
            .order_by(OrderEvent.position)
        )
        events = [(row.position, row.type) for row in rows]
    assert [t for _, t in events][:2] == ["created", "status.in_progress"]
    received = sorted(
        (verify(hook["secret"], r) for r in receiver.requests), key=lambda b: b["data"]["id"]
    )
    assert [(b["data"]["id"], b["type"]) for b in received] == events
    assert all(b["data"]["order_id"] == order_id for b in received)
    assert received[0]["data"]["customer_id"] == hero.user.id
    log = await deliveries(client, admin, hook["id"], sort="event_id")
    assert [(d["event_id"], d["status"]) for d in log] == [(p, "succeeded") for p, _ in events]


async def test_developer_manages_own_webhooks_and_secret_is_shown_only_when_made(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    loopback: Settings,
    receiver: Receiver,
) -> None:
    dev = await make_user(Role.DEVELOPER)
    made = await create(client, dev, receiver.url, ["created", "status.ready"])
    assert made["secret"].startswith("whsec_")
    assert len(base64.b64decode(made["secret"].removeprefix("whsec_"))) >= 24
    assert made["event_types"] == ["created", "status.ready"] and made["is_active"] is True

    read = await client.get(f"{BASE}/{made['id']}", headers=dev.headers)
    assert read.status_code == 200 and "secret" not in read.json()
    listed = await client.get(BASE, headers=dev.headers)
    assert [w["id"] for w in listed.json()["items"]] == [made["id"]]
    assert "secret" not in listed.json()["items"][0]

    patched = await client.patch(
        f"{BASE}/{made['id']}", json={"event_types": ["*"], "is_active": False}, headers=dev.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["event_types"] == ["*"] and patched.json()["is_active"] is False

    rotated = await client.post(f"{BASE}/{made['id']}/rotate-secret", headers=dev.headers)
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != made["secret"]

    deleted = await client.delete(f"{BASE}/{made['id']}", headers=dev.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"{BASE}/{made['id']}", headers=dev.headers)).status_code == 404

    async with backend.runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditLog.action).where(AuditLog.entity == "webhook").order_by(AuditLog.id)
        )
        assert list(rows) == [
            "webhook.create",
            "webhook.update",
            "webhook.rotate_secret",
            "webhook.delete",
        ]


async def test_another_members_webhook_is_a_404_and_other_roles_are_refused(
    client: httpx.AsyncClient, make_user: MakeUser, loopback: Settings, receiver: Receiver
) -> None:
    owner, other, admin = (
        await make_user(Role.DEVELOPER),
        await make_user(Role.DEVELOPER),
        await make_user(Role.ADMIN),
    )
    hook = await create(client, owner, receiver.url)
    for intruder in (other, admin):
        for method, path in (
            ("GET", f"{BASE}/{hook['id']}"),
            ("PATCH", f"{BASE}/{hook['id']}"),
            ("DELETE", f"{BASE}/{hook['id']}"),
            ("POST", f"{BASE}/{hook['id']}/rotate-secret"),
            ("GET", f"{BASE}/{hook['id']}/deliveries"),
            ("POST", f"{BASE}/{hook['id']}/deliveries/1/replay"),
        ):
            body = {"is_active": False} if method == "PATCH" else None
            answer = await client.request(method, path, json=body, headers=intruder.headers)
            assert answer.status_code == 404, (method, path, answer.text)
        listed = await client.get(BASE, headers=intruder.headers)
        assert listed.json()["total"] == 0
    for role in (Role.CUSTOMER, Role.RESTAURATEUR, Role.SALES, Role.COURIER):
        member = await make_user(role)
        answer = await client.get(BASE, headers=member.headers)
        assert answer.status_code == 403, role
    assert (await client.get(BASE)).status_code == 401
    still = await client.get(f"{BASE}/{hook['id']}", headers=owner.headers)
    assert still.status_code == 200 and still.json()["is_active"] is True


@pytest.mark.parametrize(
    ("types", "says"),
    [
        (["order.created"], "unknown event type 'order.created'"),
        (["*", "created"], "'*' already means every event type"),
        ([], "at least 1"),
    ],
)
async def test_event_types_are_checked(
    client: httpx.AsyncClient, make_user: MakeUser, types: list[str], says: str
) -> None:
    dev = await make_user(Role.DEVELOPER)
    answer = await client.post(
        BASE, json={"url": "https://8.8.8.8/hooks", "event_types": types}, headers=dev.headers
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["errors"][0]
    assert error["field"] == "event_types" and says in error["message"]


# --- Receivers that are refused (SSRF) -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://10.1.2.3/hooks", "10.1.2.3, which is private"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("https://localhost:8443/hooks", "localhost resolves to"),
        ("https://[::1]/hooks", "::1"),
        ("https://[::ffff:192.168.0.1]/hooks", "::ffff:c0a8:1"),
        ("https://100.64.0.1/hooks", "100.64.0.1"),
        ("https://224.0.0.1/hooks", "224.0.0.1"),
        ("https://0.0.0.0/hooks", "0.0.0.0"),  # noqa: S104 - a URL, not a bind
        ("http://127.0.0.1:9/hooks", "must be an https:// URL"),
        ("http://example.com/hooks", "must be an https:// URL"),
        ("ftp://example.com/hooks", "must be an https:// URL"),
        ("https://user:pw@example.com/hooks", "user name or password"),
        ("https:///hooks", "must name a host"),
    ],
)
async def test_private_and_non_https_receivers_are_refused_outside_development(
    client: httpx.AsyncClient, make_user: MakeUser, url: str, says: str
) -> None:
    dev = await make_user(Role.DEVELOPER)
    answer = await client.post(BASE, json={"url": url, "event_types": ["*"]}, headers=dev.headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "webhook_url_refused"
    error = answer.json()["errors"][0]
    assert error["field"] == "url" and says in error["message"], error
    listed = await client.get(BASE, headers=dev.headers)
    assert listed.json()["total"] == 0


async def test_a_url_changed_to_a_private_address_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser, loopback: Settings, receiver: Receiver
) -> None:
    dev = await make_user(Role.DEVELOPER)
    hook = await create(client, dev, receiver.url)
    answer = await client.patch(
        f"{BASE}/{hook['id']}", json={"url": "https://192.168.1.10/x"}, headers=dev.headers
    )
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "url"
    kept = await client.get(f"{BASE}/{hook['id']}", headers=dev.headers)
    assert kept.json()["url"] == receiver.url


async def test_loopback_allowed_still_refuses_other_private_addresses(
    client: httpx.AsyncClient, make_user: MakeUser, loopback: Settings
) -> None:
    dev = await make_user(Role.DEVELOPER)
    for url in ("https://10.0.0.1/x", "https://169.254.169.254/x", "http://10.0.0.1/x"):
        answer = await client.post(
            BASE, json={"url": url, "event_types": ["*"]}, headers=dev.headers
        )
        assert answer.status_code == 422, url


async def test_development_accepts_http_on_loopback_only() -> None:
    development = make_settings("sqlite+aiosqlite://", None, 25, environment="development")
    for url in ("http://localhost:8000/x", "http://127.0.0.1/x", "http://[::1]:9000/x"):
        await urls.check(url, development)
    await urls.check("https://10.0.0.1/x", development)  # development checks no addresses
    with pytest.raises(urls.RefusedUrl, match="https"):
        await urls.check("http://example.com/x", development)
    production = make_settings("sqlite+aiosqlite://", None, 25, environment="production")
    for url in ("http://localhost:8000/x", "https://localhost/x", "https://[::1]/x"):
        with pytest.raises(urls.RefusedUrl):
            await urls.check(url, production)


# --- Deliveries ------------------------------------------------------------------------------


async def test_subscribed_events_are_delivered_signed_and_logged(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    loopback: Settings,
    receiver: Receiver,
) -> None:
    admin = await make_user(Role.ADMIN)
    hook = await create(client, admin, receiver.url, ["created", "delivered"])
    await sequenced(
        backend,
        event(1, "created", customer_id=7),
        event(2, "status.in_progress", customer_id=7),
        event(3, "delivered", customer_id=8, data={"handover": "ok"}),
    )
    await backend.settle()

    assert len(receiver.requests) == 2
    bodies = [verify(hook["secret"], request) for request in receiver.requests]
    by_event = {body["data"]["id"]: body for body in bodies}
    assert set(by_event) == {1, 3}
    created = by_event[1]
    assert created["type"] == "created"
    assert created["data"]["order_id"] == 101 and created["data"]["customer_id"] == 7
    assert created["data"]["total"] == "12.50" and "actor_id" not in created["data"]
    assert by_event[3]["data"]["data"] == {"handover": "ok"}
    for request in receiver.requests:
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-id"].startswith("msg_")

    log = await deliveries(client, admin, hook["id"])
    assert [d["event_id"] for d in log] == [3, 1]  # newest first
    for entry in log:
        assert entry["status"] == "succeeded" and entry["attempts"] == 1
        assert entry["last_response_code"] == 200 and entry["delivered_at"] is not None
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {f"msg_{d['id']}" for d in log}


async def test_a_developer_receives_only_events_of_own_orders(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    loopback: Settings,
    receiver: Receiver,
) -> None:
    dev, stranger = await make_user(Role.DEVELOPER), await make_user()
    hook = await create(client, dev, receiver.url)
    await sequenced(
        backend,
        event(1, customer_id=dev.user.id),
        event(2, customer_id=stranger.user.id),
        event(3, "status.ready", customer_id=None),
    )
    await backend.settle()
    assert [verify(hook["secret"], r)["data"]["id"] for r in receiver.requests] == [1]
    assert [d["event_id"] for d in await deliveries(client, dev, hook["id"])] == [1]


async def test_a_developer_receives_the_events_of_the_restaurants_granted_to_them(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    loopback: Settings,
    receiver: Receiver,
) -> None:
    granted, other = await make_menu(backend), await make_menu(backend, slug="elsewhere")
    dev, admin = await make_user(Role.DEVELOPER), await make_user(Role.ADMIN)
    grant = await client.patch(
        f"/api/v1/users/{dev.user.id}",
        json={"restaurant_ids": [granted.restaurant.id]},
        headers=admin.headers,
    )
    assert grant.status_code == 200, grant.text
    hook = await create(client, dev, receiver.url)
    here, there = granted.restaurant.id, other.restaurant.id
    position = {"lat": 50.11, "lon": 8.68}
    await sequenced(
        backend,
        event(1, restaurant_id=here),
        event(2, restaurant_id=there),
        event(3, "courier.location", restaurant_id=here, data=position),
    )
    await backend.settle()
    received = sorted(
        (verify(hook["secret"], r)["data"] for r in receiver.requests), key=lambda d: d["id"]
    )
    assert [(d["id"], d["restaurant_id"]) for d in received] == [(1, here), (3, here)]
    assert received[1]["type"] == "courier.location" and received[1]["data"] is None


async def test_inactive_webhooks_and_deactivated_owners_receive_nothing(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    loopback: Settings,
    receiver: Receiver,
) -> None:
    paused_owner, gone_owner, admin = (
        await make_user(Role.ADMIN),
        await make_user(Role.ADMIN),
        await make_user(Role.ADMIN),
    )
    paused = await create(client, paused_owner, receiver.url)
    await client.patch(
        f"{BASE}/{paused['id']}", json={"is_active": False}, headers=paused_owner.headers
    )
    gone = await create(client, gone_owner, receiver.url)
    answer = await client.patch(
        f"/api/v1/users/{gone_owner.user.id}", json={"is_active": False}, headers=admin.headers
    )
    assert answer.status_code == 200, answer.text
    await sequenced(backend, event(1))
    await backend.settle()
    assert receiver.requests == []
    assert await deliveries(client, paused_owner, paused["id"]) == []
    assert gone["id"]


async def test_a_failing_receiver_is_retried_until_it_answers(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    loopback: Settings,
    receiver: Receiver,
) -> None:
    receiver.answers = [500, 429]
    dev = await make_user(Role.DEVELOPER)
    hook = await create(client, dev, receiver.url)
    await sequenced(backend, event(1, customer_id=dev.user.id))
    await backend.settle()

    assert len(receiver.requests) == 3  # 500, 429, then 200
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        verify(hook["secret"], request)
    [entry] = await deliveries(client, dev, hook["id"])
    assert entry["status"] == "succeeded" and entry["attempts"] == 3
    assert entry["last_response_code"] == 200 and entry["last_error"] is None


async def test_retries_wait_the_backoff_and_give_up_after_the_last(
    backend: Backend, client: httpx.AsyncClient, make_user: MakeUser, receiver: Receiver
) -> None:
    """The real pauses (5 s, 30 s, ...) are not waited for: each due retry is run directly,
    as the worker would once it is due."""
    async with settings_changed(
        backend, webhook_allow_loopback=True, webhook_retry_backoff=[5, 30]
    ):
        receiver.answers = [503, 503, 503, 503]
        dev = await make_user(Role.DEVELOPER)
        hook = await create(client, dev, receiver.url)
        await sequenced(backend, event(1, customer_id=dev.user.id))
        await backend.run_jobs()  # the first try; the retry is scheduled 5 s later
        for attempt, pause in ((1, 5), (2, 30)):
            [entry] = await deliveries(client, dev, hook["id"])
            assert entry["status"] == "pending" and entry["attempts"] == attempt
            assert entry["last_response_code"] == 503
            assert entry["last_error"].startswith("HTTP 503: receiver says no")
            due = dt.datetime.fromisoformat(entry["next_attempt_at"])
            waited = due - dt.datetime.now(dt.UTC)
            assert dt.timedelta(seconds=pause - 5) < waited <= dt.timedelta(seconds=pause)
            assert len(receiver.requests) == attempt
            await backend.run_job("webhooks.deliver", delivery_id=entry["id"], attempt=attempt)
            # The same try asked again (a job delivered twice) sends nothing.
            await backend.run_job("webhooks.deliver", delivery_id=entry["id"], attempt=attempt)
        [entry] = await deliveries(client, dev, hook["id"])
        assert entry["status"] == "failed" and entry["attempts"] == 3
        assert entry["next_attempt_at"] is None and len(receiver.requests) == 3
        failed = await deliveries(client, dev, hook["id"], status="failed")
        assert [d["id"] for d in failed] == [entry["id"]]
        assert await deliveries(client, dev, hook["id"], status="succeeded") == []


@pytest.mark.parametrize(("code", "says"), [(410, "HTTP 410"), (302, "not followed")])
async def test_a_refusal_or_redirect_fails_at_once(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    loopback: Settings,
    receiver: Receiver,
    code: int,
    says: str,
) -> None:
    receiver.answers = [code]
    dev = await make_user(Role.DEVELOPER)
    hook = await create(client, dev, receiver.url)
    await sequenced(backend, event(1, customer_id=dev.user.id))
    await backend.settle()
    assert len(receiver.requests) == 1  # no retry, and /moved never asked for
    [entry] = await deliveries(client, dev, hook["id"])
    assert entry["status"] == "failed" and entry["attempts"] == 1
    assert entry["last_response_code"] == code and says in entry["last_error"]


async def test_an_unreachable_receiver_is_a_network_error_retried(
    backend: Backend, client: httpx.AsyncClient, make_user: MakeUser, loopback: Settings
) -> None:
    dev = await make_user(Role.DEVELOPER)
    hook = await create(client, dev, f"http://127.0.0.1:{free_port()}/hooks")  # no listener
    await sequenced(backend, event(1, customer_id=dev.user.id))
    await backend.settle()
    [entry] = await deliveries(client, dev, hook["id"])
    assert entry["status"] == "failed" and entry["attempts"] == 4  # 1 + 3 retries
    assert entry["last_response_code"] is None and "ConnectError" in entry["last_error"]


async def test_replay_sends_the_same_delivery_again(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    loopback: Settings,
    receiver: Receiver,
) -> None:
    receiver.answers = [410]
    dev, other = await make_user(Role.DEVELOPER), await make_user(Role.DEVELOPER)
    hook = await create(client, dev, receiver.url)
    await sequenced(backend, event(1, customer_id=dev.user.id))
    await backend.settle()
    [entry] = await deliveries(client, dev, hook["id"])
    assert entry["status"] == "failed"

    path = f"{BASE}/{hook['id']}/deliveries/{entry['id']}/replay"
    assert (await client.post(path, headers=other.headers)).status_code == 404
    replayed = await client.post(path, headers=dev.headers)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["status"] == "pending"
    await backend.settle()

    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    assert verify(hook["secret"], receiver.requests[1])["data"]["id"] == 1
    [entry] = await deliveries(client, dev, hook["id"])
    assert entry["status"] == "succeeded" and entry["attempts"] == 2

    missing = await client.post(f"{BASE}/{hook['id']}/deliveries/999/replay", headers=dev.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "delivery_not_found"
    await client.patch(f"{BASE}/{hook['id']}", json={"is_active": False}, headers=dev.headers)
    paused = await client.post(path, headers=dev.headers)
    assert paused.status_code == 409 and paused.json()["code"] == "webhook_inactive"


async def test_the_address_is_checked_again_when_delivering(
    backend: Backend, client: httpx.AsyncClient, make_user: MakeUser, receiver: Receiver
) -> None:
    """A URL accepted when it was set and refused by the time of delivery (its name now
    resolves elsewhere, or the rules changed) is never connected to."""
    dev = await make_user(Role.DEVELOPER)
    async with settings_changed(backend, webhook_allow_loopback=True):
        hook = await create(client, dev, receiver.url)
    await sequenced(backend, event(1, customer_id=dev.user.id))
    await backend.settle()
    assert receiver.requests == []
    [entry] = await deliveries(client, dev, hook["id"])
    assert entry["status"] == "failed" and entry["attempts"] == 1
    assert entry["last_error"].startswith("refused: url must be an https:// URL")


async def test_delivery_log_filters_and_sorts_through_the_whitelist(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    loopback: Settings,
    receiver: Receiver,
) -> None:
    receiver.answers = [404]
    admin = await make_user(Role.ADMIN)
    hook = await create(client, admin, receiver.url)
    await sequenced(backend, event(1), event(2, "status.ready"), event(3, "status.completed"))
    await backend.settle()
    failed = await deliveries(client, admin, hook["id"], status="failed")
    assert len(failed) == 1 and failed[0]["last_response_code"] == 404
    by_event = await deliveries(client, admin, hook["id"], sort="event_id")
    assert [d["event_id"] for d in by_event] == [1, 2, 3]
    typed = await deliveries(client, admin, hook["id"], event_type="status.ready")
    assert [d["event_id"] for d in typed] == [2]
    refused = await client.get(
        f"{BASE}/{hook['id']}/deliveries", params={"secret": "x"}, headers=admin.headers
    )
    assert refused.status_code == 400 and refused.json()["parameter"] == "secret"


async def test_a_delivery_connects_to_the_address_it_checked_keeping_the_host(
    backend: Backend,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    loopback: Settings,
    receiver: Receiver,
) -> None:
    """The name is resolved once per try, checked, and that very address connected to: a
    second resolution (by the HTTP client) could answer another address (DNS rebinding)."""
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    target = await urls.target(f"http://localhost:{port}/hooks", loopback)
    if not target.url.startswith("http://127.0.0.1:"):
        pytest.skip("localhost does not resolve to 127.0.0.1 first here")
    assert target.host_header == f"localhost:{port}" and target.server_name == "localhost"
    dev = await make_user(Role.DEVELOPER)
    hook = await create(client, dev, f"http://localhost:{port}/hooks")
    await sequenced(backend, event(1, customer_id=dev.user.id))
    await backend.settle()
    [request] = receiver.requests
    assert request.headers["host"] == f"localhost:{port}"
    verify(hook["secret"], request)
