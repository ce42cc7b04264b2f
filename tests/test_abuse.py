"""Abuse limits: failed logins and registrations per client address, body sizes, and the
client address itself, which only a trusted proxy may state (a real nginx with the shipped
configuration in front of a real `commissary serve`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from commissary.models import User
from tests.conftest import PASSWORD, Backend, MakeUser
from tests.servers import Mailbox, PortTaken, free_port, wait_for_port
from tests.test_cli import COMMISSARY, Server, clean_env, serve

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "commissary.conf.template"
MiB = 1024 * 1024


def client_at(backend: Backend, host: str) -> httpx.AsyncClient:
    """A client whose requests reach the app from ``host``, as a server would report it."""
    transport = httpx.ASGITransport(app=backend.app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def users_count(backend: Backend) -> int:
    async with backend.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


def register_body(n: int) -> dict[str, str]:
    return {"email": f"hero{n}@example.com", "password": "fresh-start-9", "full_name": f"H {n}"}


# --- logins ---------------------------------------------------------------------------------


async def test_successful_logins_from_one_address_are_never_limited(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    """A restaurant's waiters all sign in from the restaurant's one address."""
    waiters = [await make_user() for _ in range(3)]
    attempts = backend.settings.login_max_failures_per_client + 3
    statuses = []
    for n in range(attempts):
        waiter = waiters[n % len(waiters)]
        response = await client.post(
            "/api/v1/auth/login", json={"email": waiter.user.email, "password": PASSWORD}
        )
        statuses.append(response.status_code)
    assert statuses == [200] * attempts


async def test_failed_logins_are_limited_per_client_even_for_a_right_password(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    limit = backend.settings.login_max_failures_per_client
    for n in range(limit):
        response = await client.post(
            "/api/v1/auth/login", json={"email": f"u{n}@example.com", "password": "wrong-1"}
        )
        assert response.status_code == 401, n
    account = await make_user()

    blocked = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert blocked.headers["content-type"] == "application/problem+json"
    assert blocked.json()["code"] == "rate_limited"
    assert int(blocked.headers["retry-after"]) > 0

    async with client_at(backend, "198.51.100.7") as elsewhere:
        fine = await elsewhere.post(
            "/api/v1/auth/login", json={"email": account.user.email, "password": PASSWORD}
        )
    assert fine.status_code == 200


async def test_ipv6_clients_of_one_64_network_share_the_failure_count(
    backend: Backend,
) -> None:
    limit = backend.settings.login_max_failures_per_client
    for n in range(limit):
        async with client_at(backend, f"2001:db8:5:7::{n + 1:x}") as one_of_many:
            response = await one_of_many.post(
                "/api/v1/auth/login", json={"email": f"u{n}@example.com", "password": "wrong-1"}
            )
        assert response.status_code == 401
    async with client_at(backend, "2001:db8:5:7:ffff::1") as same_network:
        blocked = await same_network.post(
            "/api/v1/auth/login", json={"email": "u@example.com", "password": "wrong-1"}
        )
    assert blocked.status_code == 429
    async with client_at(backend, "2001:db8:5:8::1") as next_network:
        other = await next_network.post(
            "/api/v1/auth/login", json={"email": "u@example.com", "password": "wrong-1"}
        )
    assert other.status_code == 401


# --- registrations --------------------------------------------------------------------------


async def test_registrations_are_limited_per_client_with_retry_after(
    client: httpx.AsyncClient, backend: Backend, mailbox: Mailbox
) -> None:
    limit = backend.settings.register_max_per_client
    for n in range(limit):
        created = await client.post("/api/v1/auth/register", json=register_body(n))
        assert created.status_code == 201, created.text
    await backend.settle()
    mails = len(mailbox.messages)

    refused = await client.post("/api/v1/auth/register", json=register_body(limit))
    await backend.settle()

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert 0 < int(refused.headers["retry-after"]) <= backend.settings.register_client_window
    assert await users_count(backend) == limit
    assert len(mailbox.messages) == mails
    async with client_at(backend, "198.51.100.8") as elsewhere:
        other = await elsewhere.post("/api/v1/auth/register", json=register_body(limit + 1))
    assert other.status_code == 201


# --- body sizes -----------------------------------------------------------------------------


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "body_too_large"
    assert "x-request-id" in response.headers


async def test_json_body_over_the_limit_is_413_and_nothing_is_stored(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    body = register_body(1) | {"full_name": "x" * (backend.settings.max_json_body_bytes + 1)}

    response = await client.post("/api/v1/auth/register", json=body)

    assert_too_large(response)
    assert str(backend.settings.max_json_body_bytes) in response.json()["detail"]
    assert await users_count(backend) == 0


async def test_json_body_of_exactly_the_limit_is_read(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    compact = httpx.Request("POST", "/", json=register_body(1)).content
    padded = compact + b" " * (backend.settings.max_json_body_bytes - len(compact))

    response = await client.post(
        "/api/v1/auth/register", content=padded, headers={"content-type": "application/json"}
    )

    assert response.status_code == 201, response.text


async def test_chunked_body_is_cut_off_as_it_arrives(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    sent = 0
    chunk = b" " * (64 * 1024)

    async def endless_json() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"email": "big@example.com", "full_name": "'
        for _ in range(50 * MiB // len(chunk)):  # bounded: 50 MiB if nothing stops it
            sent += len(chunk)
            yield chunk

    response = await client.post(
        "/api/v1/auth/register",
        content=endless_json(),
        headers={"content-type": "application/json"},
    )

    assert_too_large(response)
    assert sent <= backend.settings.max_json_body_bytes + len(chunk)
    assert await users_count(backend) == 0


async def test_multipart_uploads_have_their_own_larger_limit(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    over_json_limit = b"x" * (backend.settings.max_json_body_bytes + MiB)
    form = {"username": "u@example.com", "password": "wrong-1"}

    allowed = await client.post(
        "/api/v1/auth/token", data=form, files={"image": ("meal.png", over_json_limit)}
    )
    assert allowed.status_code == 401, allowed.text

    too_big = b"x" * (backend.settings.max_upload_bytes + 1)
    refused = await client.post(
        "/api/v1/auth/token", data=form, files={"image": ("meal.png", too_big)}
    )
    assert_too_large(refused)
    assert "upload" in refused.json()["detail"]


# --- the client address behind the shipped proxy --------------------------------------------


def test_compose_trusts_only_the_proxys_fixed_address() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    trusted = compose["x-app"]["environment"]["FORWARDED_ALLOW_IPS"]
    proxy_address = compose["services"]["proxy"]["networks"]["default"]["ipv4_address"]

    assert "*" not in trusted
    assert trusted == proxy_address
    for name in ("api", "worker", "scheduler", "prestart"):
        assert compose["services"][name]["environment"]["FORWARDED_ALLOW_IPS"] == trusted


def render_template(upstream: str, listen: str, media_root: str = "/nonexistent") -> str:
    text = TEMPLATE.read_text()
    for name, value in {
        "PUBLIC_HOST": "localhost",
        "API_UPSTREAM": upstream,
        "PROXY_LISTEN": listen,
        "MEDIA_ROOT": media_root,
    }.items():
        text = text.replace("${" + name + "}", value)
    assert "${" not in text, "the template names a variable the proxy service does not set"
    return text


@contextlib.contextmanager
def nginx(tmp: Path, upstream_port: int, media_root: str = "/nonexistent") -> Iterator[str]:
    """The shipped template, rendered as the nginx image would, on a free loopback port."""
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if binary is None:
        pytest.fail("nginx is not installed (scripts/bootstrap --servers installs it)")
    port = free_port()
    (tmp / "commissary.conf").write_text(
        render_template(f"127.0.0.1:{upstream_port}", f"127.0.0.1:{port}", media_root)
    )
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp_paths = "\n".join(f"  {kind}_temp_path {tmp / kind};" for kind in kinds)
    (tmp / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'};\n"
        + "events { worker_connections 64; }\n"
        + f"http {{\n  access_log off;\n{temp_paths}\n  include {tmp / 'commissary.conf'};\n}}\n"
    )
    process = subprocess.Popen(
        [
            binary,
            "-p",
            str(tmp),
            "-c",
            str(tmp / "nginx.conf"),
            "-e",
            str(tmp / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        try:
            wait_for_port(port, process=process)
        except (TimeoutError, PortTaken):
            process.kill()
            pytest.fail(f"nginx did not start: {process.communicate()[1].decode()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Server]]:
    """`commissary serve` trusting only 127.0.0.1 (the default), behind nginx on that host."""
    assert COMMISSARY is not None
    cwd = tmp_path_factory.mktemp("proxied")
    env = clean_env(cwd / "commissary.db", LOGIN_MAX_FAILURES_PER_CLIENT="3")
    with serve(cwd, env) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        with nginx(tmp_path_factory.mktemp("nginx"), port) as proxy_url:
            yield proxy_url, server


def failed_login(
    base_url: str, forged: str | None = None, source: str = "127.0.0.1"
) -> httpx.Response:
    """A wrong password, each time for another account (the per-account limit stays out)."""
    headers = {"X-Forwarded-For": forged} if forged else {}
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as http:
        return http.post(
            f"{base_url}/api/v1/auth/login",
            json={"email": f"{uuid.uuid4().hex}@example.com", "password": "wrong-1"},
            headers=headers,
        )


def test_forged_forwarded_for_through_nginx_is_limited_by_the_real_address(
    proxied: tuple[str, Server],
) -> None:
    proxy_url, _ = proxied
    statuses = [
        failed_login(proxy_url, forged=f"203.0.113.{n}", source="127.0.0.2").status_code
        for n in range(1, 6)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    # Another real address is not affected: the limit is per client, not global.
    assert failed_login(proxy_url, source="127.0.0.3").status_code == 401


def test_forged_forwarded_for_from_the_proxys_own_host_is_not_believed(
    proxied: tuple[str, Server],
) -> None:
    """The client shares the proxy's (trusted) address: only an overwriting proxy keeps it
    from choosing its own address."""
    proxy_url, _ = proxied
    statuses = [
        failed_login(proxy_url, forged=f"203.0.113.{n}", source="127.0.0.1").status_code
        for n in range(10, 15)
    ]
    assert statuses == [401, 401, 401, 429, 429]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(proxied: tuple[str, Server]) -> None:
    _, server = proxied
    statuses = [
        failed_login(server.base_url, forged=f"203.0.113.{n}", source="127.0.0.4").status_code
        for n in range(20, 25)
    ]
    assert statuses == [401, 401, 401, 429, 429]


def test_redirects_through_nginx_keep_the_public_port(proxied: tuple[str, Server]) -> None:
    proxy_url, _ = proxied
    response = httpx.get(f"{proxy_url}/api/v1/users/", timeout=10)

    assert response.status_code == 307, response.text
    assert response.headers["location"] == f"{proxy_url}/api/v1/users"
