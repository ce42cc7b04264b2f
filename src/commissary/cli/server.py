"""`serve`, `worker` and `scheduler`."""

from __future__ import annotations

from typing import Annotated

import typer

from commissary.cli.common import app, load_settings
from commissary.core import migrate


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

    settings = load_settings()
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
        forwarded_allow_ips=settings.forwarded_allow_ips,
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

    settings = load_settings()
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

    settings = load_settings()
    if not settings.redis_url:
        typer.secho(
            "REDIS_URL is not set: periodic jobs run inside `commissary serve`.", fg="red", err=True
        )
        raise typer.Exit(2)
    configure_logging(settings)
    start_scheduler(settings)
