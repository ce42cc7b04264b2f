"""Schema migrations (Alembic), callable from the CLI, the app start-up and the tests.
The schema only ever comes from these migrations. Each call runs its own event loop, so call
these from synchronous code (or a thread)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def create_revision(database_url: str, message: str) -> Path | None:
    """Write a migration for the difference between the models and the database; when
    there is none, write nothing and return None."""

    def skip_if_empty(context: object, revision: object, directives: list[Any]) -> None:
        script = directives[0]
        if all(ops.is_empty() for ops in script.upgrade_ops_list):
            directives[:] = []

    written = command.revision(
        alembic_config(database_url),
        message=message,
        autogenerate=True,
        process_revision_directives=skip_if_empty,
    )
    scripts = written if isinstance(written, list) else [written]
    return next((Path(s.path) for s in scripts if s is not None), None)


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for other engines and in-memory databases)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current(database_url: str) -> str | None:
    async def read() -> str | None:
        engine = create_async_engine(database_url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: MigrationContext.configure(c).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())
