"""Who a token names: ids never reused, tokens bound to one account and revocable, tokens
that cannot be stretched, and the signing key of the embedded default."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

import asyncpg
import httpx
import pytest
import structlog
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from commissary.config import Settings
from commissary.core import migrate
from commissary.core.db import Base, commit
from commissary.core.security import TokenError, encode_token, signing_key, subject_id
from commissary.models import Role, User
from commissary.users import service as user_service
from commissary.users.auth_service import ACCESS_AUDIENCE
from tests.conftest import PASSWORD, Account, Backend, MakeUser

ME = "/api/v1/users/me"
USERS = "/api/v1/users"
NEW_PASSWORD = "nebula-mk2-77"


async def me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get(ME, headers=headers)


# Ids and tokens


async def test_a_deleted_accounts_id_and_token_never_name_the_next_account(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    customer = await make_user()  # the highest id so far
    assert (await me(client, customer.headers)).status_code == 200
    deleted = await client.delete(f"{USERS}/{customer.user.id}", headers=admin.headers)
    assert deleted.status_code == 204

    newcomer = await make_user(Role.ADMIN)

    assert newcomer.user.id > customer.user.id
    stale = await me(client, customer.headers)
    assert stale.status_code == 401
    assert stale.headers["www-authenticate"] == "Bearer"


async def test_a_token_with_another_accounts_key_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    """Same signing key, right subject, but not the key of the account it names."""
    alice, bob = await make_user(), await make_user()
    mixed = encode_token(
        backend.runtime.secret,
        subject=str(bob.user.id),
        audience=ACCESS_AUDIENCE,
        ttl=60,
        claims={"role": "customer", "tkey": alice.user.token_key},
    )
    keyless = encode_token(
        backend.runtime.secret, subject=str(bob.user.id), audience=ACCESS_AUDIENCE, ttl=60
    )
    for token in (mixed, keyless):
        assert (await me(client, {"Authorization": f"Bearer {token}"})).status_code == 401
    assert (await me(client, bob.headers)).json()["id"] == bob.user.id


async def test_a_password_change_revokes_earlier_access_tokens_at_once(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user()
    other_device = account.headers
    changed = await client.patch(
        ME,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=account.headers,
    )
    assert changed.status_code == 200, changed.text

    assert (await me(client, other_device)).status_code == 401
    login = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": NEW_PASSWORD}
    )
    fresh = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await me(client, fresh)).status_code == 200


async def test_a_deactivated_accounts_tokens_stop_and_stay_stopped_after_reactivation(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    account = await make_user()
    url = f"{USERS}/{account.user.id}"
    assert (await client.patch(url, json={"is_active": False}, headers=admin.headers)).is_success
    assert (await me(client, account.headers)).status_code == 401

    assert (await client.patch(url, json={"is_active": True}, headers=admin.headers)).is_success
    assert (await me(client, account.headers)).status_code == 401


@pytest.mark.parametrize(
    "subject", ["99999999999999999999", "9223372036854775808", "-1", "0", "abc", "1e3", "\u0661"]
)
async def test_a_token_naming_an_impossible_id_is_401(
    client: httpx.AsyncClient, backend: Backend, subject: str
) -> None:
    token = encode_token(backend.runtime.secret, subject=subject, audience=ACCESS_AUDIENCE, ttl=60)
    response = await me(client, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    # Refused for its subject itself, not only because no account or token key matches.
    with pytest.raises(TokenError):
        subject_id({"sub": subject})


async def test_resetting_an_admin_from_the_command_line_ends_its_sessions(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    signed_in = await client.post(
        "/api/v1/auth/login", json={"email": admin.user.email, "password": admin.password}
    )
    refresh_token = signed_in.json()["refresh_token"]
    async with backend.runtime.sessionmaker() as session:
        await user_service.ensure_admin(session, admin.user.email, "new-kitchen-boss-77", "Root")
        await commit(session)
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert refreshed.status_code == 401
    assert (await me(client, admin.headers)).status_code == 401


@pytest.mark.parametrize("claim", ["exp", "aud", "iss", "sub", "iat", "jti", "nbf"])
def test_extra_claims_cannot_override_the_registered_ones(claim: str) -> None:
    with pytest.raises(ValueError, match=claim):
        encode_token("k" * 48, subject="1", audience=ACCESS_AUDIENCE, ttl=60, claims={claim: 1})


def test_every_table_with_an_integer_id_never_reuses_ids_on_sqlite() -> None:
    tables = [
        table
        for table in Base.metadata.sorted_tables
        if [c.name for c in table.primary_key.columns] == ["id"]
    ]
    assert len(tables) >= 9
    for table in tables:
        assert table.dialect_kwargs.get("sqlite_autoincrement") is True, table.name


async def test_migration_keeps_rows_and_makes_sqlite_tables_autoincrement(tmp_path: Path) -> None:
    """An install made before ids were protected keeps its rows and gets new keys."""
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, url, "0002")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO user_account (id, email, password_hash, full_name, role, is_verified,"
            " is_active, allergies, created_at, updated_at) VALUES (7, 'old@example.com', 'x',"
            " 'Old', 'customer', 1, 1, '[]', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
        db.execute(
            "INSERT INTO refresh_token (jti, family_id, user_id, issued_at, expires_at)"
            " VALUES ('j', 'f', 7, '2026-01-01 00:00:00', '2030-01-01 00:00:00')"
        )
        for name in ("Drinks", "DRINKS"):
            db.execute(
                "INSERT INTO category (name, description, position, created_at, updated_at)"
                " VALUES (?, '', 0, '2026-01-01', '2026-01-01')",
                (name,),
            )

    await asyncio.to_thread(migrate.upgrade, url)

    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id, length(token_key) FROM user_account").fetchall() == [(7, 32)]
        assert db.execute("SELECT user_id FROM refresh_token").fetchall() == [(7,)]
        names = [r[0] for r in db.execute("SELECT name FROM category ORDER BY id")]
        assert names == ["Drinks", "DRINKS (2)"]
        sql = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        for table in ("user_account", "category", "customer_order", "audit_log", "outbox_job"):
            assert "AUTOINCREMENT" in sql[table], table
        db.execute("DELETE FROM user_account")
        db.execute(
            "INSERT INTO user_account (email, password_hash, full_name, role, is_verified,"
            " is_active, allergies, created_at, updated_at, token_key, referral_code)"
            " VALUES ('n@example.com', 'x', 'N', 'admin', 1, 1, '[]', '2026-01-01',"
            " '2026-01-01', 'k', 'code')"
        )
        assert db.execute("SELECT id FROM user_account").fetchone() == (8,)


# Password hashes


async def test_sign_in_upgrades_a_hash_made_with_older_parameters(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    account = await make_user()
    older = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=2048),)).hash(PASSWORD)
    await set_hash(backend, account, older)

    login = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": PASSWORD}
    )

    assert login.status_code == 200
    stored = await stored_hash(backend, account)
    assert stored != older
    assert "m=1024,t=1," in stored  # the configured cost of the test settings
    again = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": PASSWORD}
    )
    assert again.status_code == 200
    assert await stored_hash(backend, account) == stored  # current: not rewritten


async def test_a_failed_sign_in_does_not_touch_an_old_hash(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    account = await make_user()
    older = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=2048),)).hash(PASSWORD)
    await set_hash(backend, account, older)
    login = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": "not-it-at-all-7"}
    )
    assert login.status_code == 401
    assert await stored_hash(backend, account) == older


async def set_hash(backend: Backend, account: Account, value: str) -> None:
    async with backend.runtime.sessionmaker() as session:
        await session.execute(
            update(User).where(User.id == account.user.id).values(password_hash=value)
        )
        await session.commit()


async def stored_hash(backend: Backend, account: Account) -> str:
    async with backend.runtime.sessionmaker() as session:
        value = await session.scalar(select(User.password_hash).where(User.id == account.user.id))
    assert value is not None
    return value


class TransactionProbe:
    """The application's hasher, checking before each argon2 run that no transaction of the
    application is open: on SQLite a writer can take the lock at once, on PostgreSQL no
    session sits idle in a transaction."""

    def __init__(self, backend: Backend) -> None:
        self.inner = backend.runtime.passwords
        self.settings = backend.settings
        self.free: list[bool] = []

    async def check(self) -> None:
        url = make_url(self.settings.database_url)
        if self.settings.is_sqlite:
            # The app's own periodic order sweep takes the write lock for a moment every
            # second; a lock held by the request stays taken for as long as this check waits.
            self.free.append(await self._sqlite_lock_free(url.database))
            return
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            open_ = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        self.free.append(open_ == 0)

    @staticmethod
    async def _sqlite_lock_free(path: str | None, attempts: int = 50) -> bool:
        for _ in range(attempts):
            db = sqlite3.connect(str(path), timeout=0, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
                return True
            except sqlite3.OperationalError:
                await asyncio.sleep(0.02)  # the event loop runs: a brief writer can finish
            finally:
                db.close()
        return False

    async def hash(self, password: str) -> str:
        await self.check()
        return await self.inner.hash(password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        await self.check()
        return await self.inner.verify(password, password_hash)

    async def verify_and_update(
        self, password: str, password_hash: str | None
    ) -> tuple[bool, str | None]:
        await self.check()
        return await self.inner.verify_and_update(password, password_hash)


async def test_argon2_runs_with_no_transaction_open_on_every_password_path(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    backend: Backend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = await make_user(Role.ADMIN)
    customer = await make_user()
    probe = TransactionProbe(backend)
    monkeypatch.setattr(backend.runtime, "passwords", probe)
    fresh = {"email": "fresh@example.com", "password": PASSWORD, "full_name": "Fresh"}
    steps = [
        ("register", client.post("/api/v1/auth/register", json=fresh)),
        (
            "admin create",
            client.post(USERS, json={**fresh, "email": "made@example.com"}, headers=admin.headers),
        ),
        (
            "admin reset",
            client.patch(
                f"{USERS}/{customer.user.id}",
                json={"password": NEW_PASSWORD},
                headers=admin.headers,
            ),
        ),
        (
            "login",
            client.post(
                "/api/v1/auth/login", json={"email": customer.user.email, "password": NEW_PASSWORD}
            ),
        ),
        (
            "own change",
            client.patch(
                ME,
                json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                headers=admin.headers,
            ),
        ),
    ]
    for name, call in steps:
        before = len(probe.free)
        response = await call
        assert response.is_success, (name, response.text)
        assert probe.free[before:] and all(probe.free[before:]), name


def test_password_hashing_is_strong_by_default_and_configurable() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (defaults.password_hash_time_cost, defaults.password_hash_memory_cost) == (3, 65536)
    assert defaults.password_hash_workers == 2
    with pytest.raises(ValueError, match="password_hash_memory_cost"):
        Settings(_env_file=None, password_hash_memory_cost=8)  # type: ignore[call-arg]


async def test_passwords_hash_in_their_own_pool_with_the_configured_cost(backend: Backend) -> None:
    passwords = backend.runtime.passwords
    names: list[str] = []

    def work() -> None:
        import threading

        names.append(threading.current_thread().name)

    await passwords._run(work)
    assert names[0].startswith("password-hash")
    assert "m=1024,t=1," in await passwords.hash(PASSWORD)


# The signing key of the embedded default


def dev_settings(database: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, environment="development", database_url=f"sqlite:///{database}"
    )


def test_development_makes_a_private_random_key_once_beside_the_database(
    tmp_path: Path,
) -> None:
    settings = dev_settings(tmp_path / "commissary.db")
    assert settings.secret_key is None
    with structlog.testing.capture_logs() as logs:
        key = signing_key(settings)
        again = signing_key(settings)

    path = tmp_path / "commissary.db.secret"
    assert key == again == path.read_text().strip()
    assert len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    created = [e for e in logs if e["event"] == "development_signing_key_created"]
    assert len(created) == 1
    assert key not in repr(logs)
    other = signing_key(dev_settings(tmp_path / "elsewhere" / "other.db"))
    assert other != key


def test_a_readable_key_file_is_refused(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path / "commissary.db")
    path = Path(f"{tmp_path / 'commissary.db'}.secret")
    signing_key(settings)
    path.chmod(0o644)
    with pytest.raises(RuntimeError, match="chmod 600"):
        signing_key(settings)


def test_an_explicit_key_wins_and_production_needs_one(tmp_path: Path) -> None:
    explicit = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key="s" * 40
    )
    assert signing_key(explicit) == "s" * 40
    assert not (tmp_path / "x.db.secret").exists()
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
