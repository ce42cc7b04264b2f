"""The API while Redis is away: sign-in and resend keep answering, with rate limits counted
in process, and the limits go back to Redis once it returns."""

from __future__ import annotations

import signal

import httpx
import pytest
from structlog.testing import capture_logs

from commissary.core.ratelimit import FallbackRateLimiter
from tests.conftest import Backend, MakeUser
from tests.servers import Mailbox, RedisServer
from tests.test_jobs import age_outbox, owed

LOGIN = "/api/v1/auth/login"
RESEND = "/api/v1/auth/verify/resend"


@pytest.fixture
def redis(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> RedisServer:
    """The backend's Redis, and a rate limiter with no counts from earlier tests that tries
    Redis again on every call (in service it waits a second between tries)."""
    if backend.redis is None or backend.runtime.redis is None:
        pytest.skip("the embedded default has no Redis to lose")
    assert isinstance(backend.runtime.limiter, FallbackRateLimiter)
    limiter = FallbackRateLimiter(backend.runtime.redis)
    limiter.PROBE_EVERY = 0.0
    monkeypatch.setattr(backend.runtime, "limiter", limiter)
    return backend.redis


async def test_sign_in_is_limited_in_process_while_redis_is_down(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, redis: RedisServer
) -> None:
    account = await make_user()
    right = {"email": account.user.email, "password": account.password}
    wrong = {**right, "password": "not-the-password"}
    with capture_logs() as logs:
        redis.stop()
        try:
            assert (await client.post(LOGIN, json=right)).status_code == 200
            for _ in range(backend.settings.login_max_failures_per_account):
                assert (await client.post(LOGIN, json=wrong)).status_code == 401
            blocked = await client.post(LOGIN, json=right)
            assert blocked.status_code == 429, blocked.text
            assert int(blocked.headers["Retry-After"]) > 0
        finally:
            redis.start()
        # Redis is back, restarted empty: its counts rule again, not the ones kept meanwhile.
        again = await client.post(LOGIN, json=right)
        assert again.status_code == 200, again.text
        # Failures are what is counted: this one lands in Redis again.
        assert (await client.post(LOGIN, json=wrong)).status_code == 401
    assert backend.runtime.redis is not None
    assert await backend.runtime.redis.keys("commissary:rl:login:*")
    outage = [e for e in logs if e.get("component") == "rate_limiter"]
    assert [e["event"] for e in outage] == ["redis_unavailable", "redis_available"]


async def test_resend_answers_while_redis_is_down_and_the_mail_follows(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    mailbox: Mailbox,
    redis: RedisServer,
) -> None:
    account = await make_user(verified=False)
    await backend.run_jobs()  # the mail of the registration
    mailbox.messages.clear()
    redis.stop()
    try:
        response = await client.post(RESEND, json={"email": account.user.email})
        assert response.status_code == 202, response.text
    finally:
        redis.start()
    assert await owed(backend) == 1
    await age_outbox(backend)
    await backend.run_job("ops.relay_outbox")
    await backend.settle()
    assert len(mailbox.to(account.user.email)) == 1


async def test_sign_in_answers_while_redis_hangs(
    client: httpx.AsyncClient, make_user: MakeUser, redis: RedisServer
) -> None:
    account = await make_user()
    assert redis.process is not None
    with capture_logs() as logs:
        redis.process.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
        try:
            response = await client.post(
                LOGIN, json={"email": account.user.email, "password": account.password}
            )
        finally:
            redis.process.send_signal(signal.SIGCONT)
    # A timed-out call is not retried: the limiter gives up on Redis and counts in process.
    assert response.status_code == 200, response.text
    [down] = [e for e in logs if e["event"] == "redis_unavailable"]
    assert "Timeout" in down["error"] or "timed out" in down["error"].lower()
