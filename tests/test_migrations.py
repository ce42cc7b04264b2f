"""The migrations alone build the schema the models describe, on SQLite and PostgreSQL, and
they go down to nothing and up again."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import commissary.models  # noqa: F401 - registers every table on Base.metadata
from commissary.core import migrate
from commissary.core.db import Base

MODEL_TABLES = set(Base.metadata.tables)


def _plain_dsn(url: str, database: str) -> str:
    """An asyncpg DSN for another database of the server of ``url``."""
    return (
        make_url(url)
        .set(drivername="postgresql", database=database)
        .render_as_string(hide_password=False)
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a database with no table at all, on each engine."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    pg_url: str = request.getfixturevalue("pg_url")
    name = f"migr_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_plain_dsn(pg_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _inspect(url: str, fn: Any) -> Any:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _schema_diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _upgrade(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(migrate.upgrade, url, revision)


async def _downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(migrate.downgrade, url, revision)


async def _current(url: str) -> str | None:
    return await asyncio.to_thread(migrate.current, url)


async def test_upgrade_from_empty_creates_every_model_table(empty_database: str) -> None:
    assert await _inspect(empty_database, _tables) == set()
    assert await _current(empty_database) is None

    await _upgrade(empty_database)

    tables = await _inspect(empty_database, _tables)
    assert tables == MODEL_TABLES | {"alembic_version"}
    assert {"user_account", "refresh_token", "customer_order", "order_line"} <= tables
    assert await _current(empty_database) == migrate.head()


async def test_migrated_schema_matches_the_models(empty_database: str) -> None:
    await _upgrade(empty_database, "0001")
    partial = await _inspect(empty_database, _schema_diff)
    assert any(d[0] == "add_table" for d in partial)  # the comparison does see missing tables

    await _upgrade(empty_database)

    differences = await _inspect(empty_database, _schema_diff)

    assert differences == [], "models and migrations disagree; run `commissary db create-migration`"


async def test_downgrade_to_base_drops_every_table_and_upgrade_works_again(
    empty_database: str,
) -> None:
    await _upgrade(empty_database)

    await _downgrade(empty_database, "base")

    assert await _inspect(empty_database, _tables) <= {"alembic_version"}
    assert await _current(empty_database) is None

    await _upgrade(empty_database)
    assert await _inspect(empty_database, _tables) == MODEL_TABLES | {"alembic_version"}
    assert await _inspect(empty_database, _schema_diff) == []
    assert await _current(empty_database) == migrate.head()


async def test_each_revision_steps_down_and_up_one_at_a_time(empty_database: str) -> None:
    """Every single downgrade step undoes exactly what its upgrade did (no leftover table,
    index or constraint that would make the next upgrade fail)."""
    await _upgrade(empty_database)
    revisions: list[str] = []
    while (revision := await _current(empty_database)) is not None:
        revisions.append(revision)
        await _downgrade(empty_database, "-1")
    assert revisions[0] == migrate.head()
    assert len(revisions) >= 2
    assert await _inspect(empty_database, _tables) <= {"alembic_version"}

    for revision in reversed(revisions):
        await _upgrade(empty_database, "+1")
        assert await _current(empty_database) == revision
    assert await _inspect(empty_database, _schema_diff) == []
