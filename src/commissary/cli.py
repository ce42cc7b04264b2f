"""The `commissary` command."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from commissary.config import Settings
from commissary.core import migrate

app = typer.Typer(help="Commissary: a backend for ordering food.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema: migrations and reset.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        typer.secho(f"configuration error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply pending migrations first.")
    ] = True,
) -> None:
    """Serve the HTTP API (Swagger UI at /docs)."""
    import uvicorn

    settings = _settings()
    if migrate_first:
        migrate.upgrade(settings.database_url)
    uvicorn.run(
        "commissary.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        access_log=False,
        log_config=None,
    )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit once the queue is empty.")] = False,
) -> None:
    """Run an RQ worker (needs REDIS_URL). Start as many as the load needs."""
    from commissary.core.logging import configure_logging
    from commissary.worker import start_worker

    settings = _settings()
    if not settings.redis_url:
        typer.secho("REDIS_URL is not set: jobs run inside `commissary serve`.", fg="red", err=True)
        raise typer.Exit(2)
    configure_logging(settings)
    start_worker(settings, burst=burst)


@app.command()
def scheduler() -> None:
    """Run the periodic jobs (needs REDIS_URL). Run exactly one."""
    from commissary.core.logging import configure_logging
    from commissary.worker import start_scheduler

    settings = _settings()
    if not settings.redis_url:
        typer.secho(
            "REDIS_URL is not set: periodic jobs run inside `commissary serve`.", fg="red", err=True
        )
        raise typer.Exit(2)
    configure_logging(settings)
    start_scheduler(settings)


@db_app.command("init")
def db_init() -> None:
    """Migrate the database to the latest schema and create the admin from ADMIN_EMAIL and
    ADMIN_PASSWORD when both are set."""
    settings = _settings()
    migrate.upgrade(settings.database_url)
    typer.echo(f"database at revision {migrate.current(settings.database_url)}")
    if settings.admin_email and settings.admin_password:
        _create_admin(
            settings,
            settings.admin_email,
            settings.admin_password.get_secret_value(),
            "Administrator",
        )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    settings = _settings()
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at revision {migrate.current(settings.database_url)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1 or base")] = "-1") -> None:
    """Revert migrations down to REVISION (default: one step)."""
    settings = _settings()
    migrate.downgrade(settings.database_url, revision)
    typer.echo(f"database at revision {migrate.current(settings.database_url)}")


@db_app.command("status")
def db_status() -> None:
    """Show the database's revision and the latest one."""
    settings = _settings()
    current, head = migrate.current(settings.database_url), migrate.head()
    typer.echo(f"current: {current or '(empty)'}\nhead:    {head}")
    typer.echo(
        "up to date" if current == head else "pending migrations: run `commissary db upgrade`"
    )


@db_app.command("reset")
def db_reset(yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Drop every table and migrate again: ALL DATA IS LOST."""
    settings = _settings()
    if not yes and not typer.confirm(f"Erase every table of {_safe_url(settings)}?"):
        raise typer.Abort()
    migrate.downgrade(settings.database_url, "base")
    migrate.upgrade(settings.database_url)
    typer.echo("database reset to the latest schema")


@db_app.command("create-migration")
def db_create_migration(
    message: Annotated[str, typer.Argument(help="What the change does.")],
) -> None:
    """Write a new migration from the difference between the models and the database."""
    settings = _settings()
    migrate.create_revision(settings.database_url, message)


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True, envvar="ADMIN_EMAIL")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, envvar="ADMIN_PASSWORD"
        ),
    ],
    full_name: Annotated[str, typer.Option(help="Display name.")] = "Administrator",
) -> None:
    """Create an admin account (or promote the account of that e-mail and reset its password)."""
    _create_admin(_settings(), email, password, full_name)


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def _create_admin(settings: Settings, email: str, password: str, full_name: str) -> None:
    from pydantic import ValidationError

    from commissary import tasks
    from commissary.core.db import commit
    from commissary.core.runtime import Runtime
    from commissary.users import service
    from commissary.users.schemas import UserCreate

    try:
        data = UserCreate(email=email, password=password, full_name=full_name)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        typer.secho(f"invalid admin account: {problems}", fg="red", err=True)
        raise typer.Exit(2) from None

    async def run() -> int:
        tasks.load()
        runtime = Runtime.create(settings)
        try:
            async with runtime.sessionmaker() as session:
                user = await service.ensure_admin(
                    session, data.email, data.password, data.full_name
                )
                await commit(session)
                return user.id
        finally:
            await runtime.close()

    user_id = asyncio.run(run())
    typer.echo(f"admin {data.email} ready (id {user_id})")
