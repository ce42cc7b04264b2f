"""`serve`, `worker` and `scheduler`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from commissary.cli.common import app, load_settings
from commissary.core import migrate

WORKER_HEALTHCHECK_TIMEOUT = 60  # seconds
# On stop, requests still running after this long are cancelled: an event stream never
# ends by itself, and its client resumes elsewhere with Last-Event-ID.
GRACEFUL_SHUTDOWN_SECONDS = 10


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on (and of e-mail links when PUBLIC_URL is unset).")
    ] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply pending migrations first.")
    ] = True,
) -> None:
    """Serve the HTTP API (Swagger UI at /docs)."""
    import uvicorn

    from commissary.core.http_protocol import GatheringHttpProtocol

    settings = load_settings()
    if migrate_first:
        migrate.upgrade(settings.database_url)
    if workers > 1 and not reload:
        _share_metrics()
    if "public_url" not in settings.model_fields_set:
        # Links in e-mails point at this server unless PUBLIC_URL says otherwise; the
        # server processes read it from the environment.
        os.environ["PUBLIC_URL"] = _local_url(host, port)
    uvicorn.run(
        "commissary.main:create_app",
        factory=True,
        host=host,
        port=port,
        http=GatheringHttpProtocol,
        workers=None if reload else workers,
        reload=reload,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        access_log=False,
        log_config=None,
        # uvicorn kills a worker that does not answer its supervisor's ping within this time,
        # and its default (5 s) is shorter than the imports take on a busy host: workers were
        # then killed and restarted forever, and the server never became ready.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def _share_metrics() -> None:
    """Several server processes count requests in one directory of metric files (see
    ``core.metrics``): PROMETHEUS_MULTIPROC_DIR, or a fresh temporary one, emptied first so
    that no figure of an earlier run is added to this one's."""
    import tempfile
    from pathlib import Path

    from commissary.core.metrics import MULTIPROC_ENV

    configured = os.environ.get(MULTIPROC_ENV)
    folder = (
        Path(configured) if configured else Path(tempfile.mkdtemp(prefix="commissary-metrics-"))
    )
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)


def _local_url(host: str, port: int) -> str:
    """The URL of a server listening on ``host``: a wildcard address is reached on loopback."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


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
