"""What every command shares: the Typer app, settings, and running a use case in one
transaction with clear errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.config import Settings
from commissary.core.errors import DomainError
from commissary.models import Role, User

if TYPE_CHECKING:
    from commissary.core.runtime import Runtime

T = TypeVar("T")

app = typer.Typer(help="Commissary: a backend for ordering food.", no_args_is_help=True)


def fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # Only the messages: the error's input values would print the rejected secrets.
        fail(f"configuration error: {validation_message(exc)}")


def validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
    )


@contextlib.contextmanager
def valid_input() -> Iterator[None]:
    """Turn a validation error of command-line input into a message and exit status 2."""
    try:
        yield
    except ValidationError as exc:
        fail(f"invalid input: {validation_message(exc)}")


async def _follow(
    runtime: Runtime, then: Callable[[AsyncSession, T], Awaitable[None]], result: T
) -> None:
    """Run ``then``; with jobs in process this command is the whole system meanwhile, so it
    also runs the periodic jobs (the order sweep finishes the simulated kitchen's orders)."""
    from commissary import tasks
    from commissary.core.jobs import InlineDispatcher

    periodic = None
    if isinstance(runtime.jobs, InlineDispatcher):
        periodic = asyncio.create_task(tasks.run_periodic_inline(runtime, tick=0.2))
    try:
        async with runtime.sessionmaker() as session:
            await then(session, result)
    finally:
        if periodic is not None:
            periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await periodic


def require_schema(settings: Settings) -> None:
    """Commands that read or write data need the migrated schema: say how to get it, rather
    than fail deep inside a query (or leave an empty SQLite file behind)."""
    from sqlalchemy.exc import SQLAlchemyError

    from commissary.core import migrate

    path = migrate.sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        fail(f"no database at {path.resolve()}: run `commissary db init` first")
    try:
        current = migrate.current(settings.database_url)
    except (OSError, SQLAlchemyError) as exc:
        fail(f"cannot open the database: {type(exc).__name__}: {exc}")
    head = migrate.head()
    if current is None:
        fail("the database has no schema yet: run `commissary db init` first")
    if current != head:
        fail(
            f"the database is at revision {current}, this version of Commissary needs "
            f"{head}: run `commissary db upgrade`"
        )


def run_use_case(
    use_case: Callable[[AsyncSession], Awaitable[T]],
    *,
    then: Callable[[AsyncSession, T], Awaitable[None]] | None = None,
) -> T:
    """Run ``use_case`` in one transaction, as a request would: commit on success (jobs are
    dispatched after it), roll back and print the problem on a domain error. ``then`` runs
    after the commit, with a fresh session (e.g. to wait for an order's outcome)."""
    from commissary import tasks
    from commissary.core.db import commit, rollback
    from commissary.core.logging import configure_logging
    from commissary.core.runtime import Runtime

    settings = load_settings()
    require_schema(settings)
    configure_logging(settings)
    tasks.load()

    async def main() -> T:
        runtime = Runtime.create(settings)
        try:
            async with runtime.sessionmaker() as session:
                try:
                    result = await use_case(session)
                except BaseException:
                    await rollback(session)
                    raise
                await commit(session)
            if then is not None:
                await _follow(runtime, then, result)
            return result
        finally:
            await runtime.close()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        fail(f"{exc.detail} ({exc.code})")
    except ValidationError as exc:
        fail(f"invalid input: {validation_message(exc)}")


def operator() -> User:
    """Who the command line acts as: an admin that is not an account. It is never stored;
    audit rows of its actions have no actor, like the system's."""
    return User(
        role=Role.ADMIN,
        full_name="command line",
        email="operator@localhost",
        allergies=[],
        is_active=True,
        is_verified=True,
    )
