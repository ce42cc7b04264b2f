"""The purge of accounts left unverified past `UNVERIFIED_USER_TTL`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import httpx
import pytest
from sqlalchemy import select, update

from commissary.core.jobs import RQDispatcher
from commissary.models import AuditLog, EmailVerification, OutboxJob, RefreshToken, User
from commissary.users import service as user_service
from tests.conftest import PASSWORD, Backend, MakeUser

JOB = "users.purge_unverified"
AUDIT_ACTION = "user.purge_unverified"


async def age(backend: Backend, user_ids: Iterable[int], seconds: float) -> None:
    """Make these accounts look created ``seconds`` ago."""
    async with backend.runtime.sessionmaker() as session:
        created = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
        await session.execute(
            update(User).where(User.id.in_(list(user_ids))).values(created_at=created)
        )
        await session.commit()


async def user_ids(backend: Backend) -> set[int]:
    async with backend.runtime.sessionmaker() as session:
        return set((await session.scalars(select(User.id))).all())


async def verification_ids(backend: Backend) -> set[int]:
    async with backend.runtime.sessionmaker() as session:
        return set((await session.scalars(select(EmailVerification.user_id))).all())


async def purge_rows(backend: Backend) -> list[AuditLog]:
    async with backend.runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditLog).where(AuditLog.action == AUDIT_ACTION).order_by(AuditLog.id)
        )
        return list(rows.all())


async def test_purge_deletes_exactly_the_old_unverified_accounts(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    ttl = backend.settings.unverified_user_ttl
    old = [await make_user(verified=False) for _ in range(2)]
    fresh = await make_user(verified=False)
    almost = await make_user(verified=False)
    verified_old = await make_user(verified=True)
    await backend.run_jobs()  # the verification mails: one email_verification row each
    unverified = {a.user.id for a in (*old, fresh, almost)}
    assert await verification_ids(backend) == unverified
    login = await client.post(
        "/api/v1/auth/login", json={"email": old[0].user.email, "password": PASSWORD}
    )
    assert login.status_code == 200  # gives the doomed account a refresh token too
    await age(backend, [a.user.id for a in old], ttl + 60)
    await age(backend, [almost.user.id], ttl - 60)
    await age(backend, [verified_old.user.id], ttl * 10)

    await backend.run_job(JOB)

    kept = {fresh.user.id, almost.user.id, verified_old.user.id}
    assert await user_ids(backend) == kept
    assert await verification_ids(backend) == {fresh.user.id, almost.user.id}
    async with backend.runtime.sessionmaker() as session:
        assert (await session.scalars(select(RefreshToken))).all() == []
    [row] = await purge_rows(backend)
    assert row.actor_id is None
    assert row.entity == "user"
    assert row.data == {"ids": sorted(a.user.id for a in old)}
    gone = await client.get("/api/v1/users/me", headers=old[0].headers)
    assert gone.status_code == 401
    assert (await client.get("/api/v1/users/me", headers=fresh.headers)).status_code == 200

    await backend.run_job(JOB)  # idempotent: nothing more to do, nothing more recorded
    assert await user_ids(backend) == kept
    assert len(await purge_rows(backend)) == 1


async def test_purge_with_nothing_to_do_records_nothing(
    make_user: MakeUser, backend: Backend
) -> None:
    account = await make_user(verified=False)
    await backend.run_job(JOB)
    assert await user_ids(backend) == {account.user.id}
    assert await purge_rows(backend) == []


async def test_purge_works_in_batches_and_enqueues_the_rest(
    make_user: MakeUser, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(user_service, "PURGE_BATCH", 2)
    survivor = await make_user(verified=True)
    old = [await make_user(verified=False) for _ in range(5)]
    await backend.run_jobs()
    await age(backend, [a.user.id for a in old], backend.settings.unverified_user_ttl + 60)
    old_ids = sorted(a.user.id for a in old)

    await backend.run_job(JOB)

    first = (await purge_rows(backend))[0]
    assert first.data == {"ids": old_ids[:2]}  # one batch, oldest ids first
    if isinstance(backend.runtime.jobs, RQDispatcher):
        # On RQ nothing runs before the worker does: the follow-up waits in the outbox.
        assert await user_ids(backend) == {survivor.user.id, *old_ids[2:]}
        async with backend.runtime.sessionmaker() as session:
            owed = (await session.scalars(select(OutboxJob.name))).all()
        assert owed == [JOB]
        assert backend.runtime.jobs.queue.count == 1

    await backend.run_jobs()

    assert await user_ids(backend) == {survivor.user.id}
    batches = [row.data["ids"] for row in await purge_rows(backend) if row.data]
    assert batches == [old_ids[:2], old_ids[2:4], old_ids[4:]]
    async with backend.runtime.sessionmaker() as session:
        assert (await session.scalars(select(OutboxJob))).all() == []
