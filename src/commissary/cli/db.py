"""`db ...` and `users create-admin`."""

from __future__ import annotations

from typing import Annotated

import typer

from commissary.cli.common import (
    app,
    fail,
    load_settings,
    require_schema,
    run_use_case,
    validation_message,
)
from commissary.config import Settings
from commissary.core import migrate

db_app = typer.Typer(help="Database schema: migrations and reset.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")


@db_app.command("init")
def db_init() -> None:
    """Migrate the database to the latest schema and create the admin from ADMIN_EMAIL and
    ADMIN_PASSWORD when both are set."""
    settings = load_settings()
    migrate.upgrade(settings.database_url)
    typer.echo(f"database at revision {migrate.current(settings.database_url)}")
    _admin_from_environment(settings)


def _admin_from_environment(settings: Settings) -> None:
    """Create the admin of ADMIN_EMAIL/ADMIN_PASSWORD, or say how to get one."""
    if settings.admin_email and settings.admin_password:
        _create_admin(
            settings.admin_email,
            settings.admin_password.get_secret_value(),
            "Administrator",
        )
        return
    missing = " and ".join(
        name
        for name, value in (
            ("ADMIN_EMAIL", settings.admin_email),
            ("ADMIN_PASSWORD", settings.admin_password),
        )
        if not value
    )
    typer.echo(
        f"no admin account created ({missing} not set): set ADMIN_EMAIL and ADMIN_PASSWORD "
        "and run `commissary db init` again, or run `commissary users create-admin`"
    )


@db_app.command("diagram")
def db_diagram() -> None:
    """Print the entity diagram of the database (Mermaid), as the README shows it."""
    import commissary.models  # noqa: F401 - maps every table
    from commissary.core.db import Base
    from commissary.core.diagram import mermaid

    typer.echo(mermaid(Base.metadata), nl=False)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    settings = load_settings()
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at revision {migrate.current(settings.database_url)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1 or base")] = "-1") -> None:
    """Revert migrations down to REVISION (default: one step)."""
    settings = load_settings()
    migrate.downgrade(settings.database_url, revision)
    typer.echo(f"database at revision {migrate.current(settings.database_url)}")


@db_app.command("status")
def db_status() -> None:
    """Show the database's revision and the latest one."""
    settings = load_settings()
    path = migrate.sqlite_file(settings.database_url)
    # Asking must not create an empty SQLite file.
    current = None if path and not path.exists() else migrate.current(settings.database_url)
    head = migrate.head()
    typer.echo(f"current: {current or '(empty)'}\nhead:    {head}")
    typer.echo(
        "up to date" if current == head else "pending migrations: run `commissary db upgrade`"
    )


@db_app.command("reset")
def db_reset(yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Drop every table and migrate again: ALL DATA IS LOST. The admin of ADMIN_EMAIL and
    ADMIN_PASSWORD is created again, as by `db init`."""
    settings = load_settings()
    if not yes and not typer.confirm(f"Erase every table of {_safe_url(settings)}?"):
        raise typer.Abort()
    migrate.downgrade(settings.database_url, "base")
    migrate.upgrade(settings.database_url)
    typer.echo("database reset to the latest schema")
    _admin_from_environment(settings)


@db_app.command("create-migration")
def db_create_migration(
    message: Annotated[str, typer.Argument(help="What the change does.")],
) -> None:
    """Write a new migration from the difference between the models and the database (which
    must be at the latest revision). Exits 1, writing nothing, when there is no difference."""
    settings = load_settings()
    require_schema(settings)
    written = migrate.create_revision(settings.database_url, message)
    if written is None:
        typer.echo("no changes: the models match the database, so no migration was written")
        raise typer.Exit(1)
    typer.echo(f"wrote {written}")


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
    _create_admin(email, password, full_name)


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def _create_admin(email: str, password: str, full_name: str) -> None:
    from pydantic import ValidationError

    from commissary.users import service
    from commissary.users.schemas import UserCreate

    try:
        data = UserCreate(email=email, password=password, full_name=full_name)
    except ValidationError as exc:
        fail(f"invalid admin account: {validation_message(exc)}")
    user = run_use_case(
        lambda session: service.ensure_admin(session, data.email, data.password, data.full_name)
    )
    typer.echo(f"admin {data.email} ready (id {user.id})")
