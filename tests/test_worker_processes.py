"""Real `commissary worker` and `commissary scheduler` processes: they ride out a Redis
outage without a restart, and nothing a worker starts outlives it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rq import Worker as RQWorker
from sqlalchemy import select

from commissary.core.jobs import RQDispatcher
from commissary.models import Order
from tests.conftest import Backend, MakeUser
from tests.menu import make_menu
from tests.test_orders import ORDERS, body

FINAL = {"completed", "cancelled"}
OUTAGE_SECONDS = 20


def _env(backend: Backend) -> dict[str, str]:
    s = backend.settings
    return {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": s.database_url,
        "REDIS_URL": s.redis_url or "",
        "SECRET_KEY": backend.runtime.secret,
        "SMTP_HOST": "",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "KITCHEN_MIN_SECONDS": str(s.kitchen_min_seconds),
        "KITCHEN_MAX_SECONDS": str(s.kitchen_max_seconds),
        "OUTBOX_RELAY_INTERVAL": "1",
    }


@contextlib.contextmanager
def command(backend: Backend, name: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`commissary NAME` as a child process, its log in ``tmp_path / NAME.log``; stopped
    with SIGTERM at the end."""
    with (tmp_path / f"{name}.log").open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("commissary")), name],
            env=_env(backend),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def events(log: Path, name: str) -> list[dict[str, object]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("event") == name:
                found.append(record)
    return found


async def statuses(backend: Backend) -> dict[int, str]:
    async with backend.runtime.sessionmaker() as session:
        rows = await session.execute(select(Order.id, Order.status))
        return {order_id: str(getattr(status, "value", status)) for order_id, status in rows}


async def wait_until_final(backend: Backend, timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        now = await statuses(backend)
        if all(s in FINAL for s in now.values()) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.5)


async def test_worker_and_scheduler_ride_out_a_redis_outage(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, tmp_path: Path
) -> None:
    if backend.redis is None:
        pytest.skip("jobs run in the API process on the embedded default")
    menu = await make_menu(backend)
    hero = await make_user()

    async def place() -> int:
        response = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
        assert response.status_code == 202, response.text
        return int(response.json()["id"])

    with (
        command(backend, "scheduler", tmp_path) as scheduler,
        command(backend, "worker", tmp_path) as worker,
    ):
        await place()
        assert set((await wait_until_final(backend, 60)).values()) == {"completed"}

        await asyncio.gather(*(place() for _ in range(20)))
        backend.redis.stop()
        try:
            open_orders = [s for s in (await statuses(backend)).values() if s not in FINAL]
            assert open_orders, "the worker finished everything before Redis went away"
            for _ in range(5):
                await place()  # accepted while Redis is away: the outbox keeps the job
            await asyncio.sleep(OUTAGE_SECONDS)
            assert worker.poll() is None, "the worker exited during the outage"
            assert scheduler.poll() is None, "the scheduler exited during the outage"
        finally:
            backend.redis.start()

        final = await wait_until_final(backend, 90)
        assert len(final) == 26
        assert set(final.values()) == {"completed"}, final
        dispatcher = backend.runtime.jobs
        assert isinstance(dispatcher, RQDispatcher)
        # Redis restarted empty, and knows the worker again.
        assert [w.pid for w in RQWorker.all(connection=dispatcher.connection)] == [worker.pid]
        assert worker.poll() is None
        assert scheduler.poll() is None
        worker.terminate()
        scheduler.terminate()
        assert worker.wait(15) == 0
        assert scheduler.wait(15) == 0

    for name in ("worker", "scheduler"):
        log = tmp_path / f"{name}.log"
        # One line when Redis goes away and one when it is back, not one per retry: per
        # part that uses Redis (the worker's loop; the event stream's publishing, when a
        # batch was being published as Redis went).
        down = Counter(str(e["component"]) for e in events(log, "redis_unavailable"))
        back = Counter(str(e["component"]) for e in events(log, "redis_available"))
        assert down[name] == 1 and set(down.values()) == {1}, log.read_text()
        assert back[name] == 1 and set(back.values()) == {1}, log.read_text()
        assert set(back) <= set(down), log.read_text()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


async def test_nothing_a_killed_worker_started_outlives_it(
    backend: Backend, tmp_path: Path
) -> None:
    if backend.redis is None:
        pytest.skip("jobs run in the API process on the embedded default")
    assert backend.runtime.redis is not None
    with command(backend, "worker", tmp_path) as worker:
        # The worker is fully up once some scheduler of it holds the queue's scheduler lock.
        deadline = time.monotonic() + 30
        while not await backend.runtime.redis.exists("rq:scheduler-lock:commissary"):
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            await asyncio.sleep(0.1)
        children = _children(worker.pid)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        survivors = [pid for pid in children if _alive(pid)]
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        assert survivors == []


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_workers_and_the_scheduler_give_the_cpu_to_requests_first(
    backend: Backend, tmp_path: Path
) -> None:
    """They take WORKER_NICE (10 by default) at start, as their first step."""
    if backend.redis is None:
        pytest.skip("jobs run in the API process on the embedded default")
    with (
        command(backend, "worker", tmp_path) as worker,
        command(backend, "scheduler", tmp_path) as scheduler,
    ):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            _niceness(p.pid) for p in (worker, scheduler)
        ):
            time.sleep(0.1)
        assert (_niceness(worker.pid), _niceness(scheduler.pid)) == (10, 10)
