"""structlog set-up: JSON lines in production, a readable console in development; every line
of a request carries its ``request_id``."""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any, TextIO

import structlog

from commissary.config import Settings

_REDACT = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "token",
        "refresh_token",
        "access_token",
        "authorization",
        "secret_key",
        "smtp_password",
        "api_key",
        "x_api_key",
        "secret",
    }
)


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Last line of defence: a secret passed as a log field never reaches the output."""
    for key in _REDACT & event.keys():
        event[key] = "***"
    return event


def use_colors(stream: TextIO) -> bool:
    """Colours only for a person at a terminal, and never when NO_COLOR is set
    (https://no-color.org): escape codes in a file or a log collector are noise."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def configure_logging(settings: Settings) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.resolved_log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=use_colors(sys.stderr))
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Cached loggers keep the processors of their first use, which would hide them from
        # a test's `capture_logs()`; outside tests the cache saves work on every line.
        cache_logger_on_first_use=settings.environment != "test",
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RedactQuerySecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).handlers.clear()
        logging.getLogger(noisy).propagate = False
    for name in ("uvicorn", "uvicorn.error", "rq.worker", "rq.cron", "alembic"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


# Credentials that travel in a query string: a WebSocket ticket, a verification link's token.
_QUERY_SECRET = re.compile(r"((?:^|[?&])(?:ticket|token)=)[^&\s\"']+")


def redact(text: str) -> str:
    return _QUERY_SECRET.sub(r"\1[redacted]", text)


class RedactQuerySecrets(logging.Filter):
    """Blanks the values of ``ticket`` and ``token`` query parameters in every line, such as
    the server's own `"WebSocket /api/v1/support/ws?ticket=..." [accepted]`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True
