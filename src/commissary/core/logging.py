"""structlog set-up: JSON lines in production, a readable console in development; every line
of a request carries its ``request_id``."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import threading
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict

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


def _redact(_: Any, __: str, event: EventDict) -> EventDict:
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


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
}


_PROCESSORS: list[Any] = []


class _AtLeast:
    """Drops the lines below ``level``."""

    def __init__(self, level: int) -> None:
        self.level = level

    def __call__(self, _: Any, method: str, event: EventDict) -> EventDict:
        if _LEVELS.get(method, logging.CRITICAL) < self.level:
            raise structlog.DropEvent
        return event


class _LineLogger:
    """Where structlog's own lines go once rendered: standard error as it is when the line
    is written (a test may have swapped it), one write and flush per line; ``name`` fills
    the ``logger`` field."""

    _lock = threading.Lock()

    def __init__(self, name: str = "") -> None:
        self.name = name

    def msg(self, message: str) -> None:
        stream = sys.stderr
        with self._lock:
            stream.write(message + "\n")
            stream.flush()

    debug = info = warning = warn = error = exception = critical = fatal = log = msg


def _traceback_without_locals(colors: bool) -> Any:
    """The console's traceback layout: rich's (installed with typer), with no local
    variables, in colour only where the lines are; the standard library's without rich."""
    if importlib.util.find_spec("rich") is None:  # pragma: no cover
        return structlog.dev.plain_traceback
    return structlog.dev.RichTracebackFormatter(
        show_locals=False, color_system="truecolor" if colors else None
    )


def configure_logging(settings: Settings) -> None:
    """Commissary's own lines (structlog) are rendered by structlog and written straight to
    stderr: the standard library's record, caller lookup and second formatting pass cost a
    request's access line more than the rest of its logging. Lines of the libraries (uvicorn,
    RQ, Alembic) go through the standard library's handler and get the same fields and
    rendering, so both kinds of line look alike."""
    json_lines = settings.resolved_log_format == "json"
    colors = use_colors(sys.stderr)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(
            colors=colors,
            # Without the frames' local variables: they hold passwords, tokens and request
            # bodies, and rendering them held the event loop for seconds on a large frame.
            exception_formatter=_traceback_without_locals(colors),
        )
    )
    # The console renderer lays out tracebacks itself; JSON gets them as text.
    exceptions: list[Any] = [structlog.processors.format_exc_info] if json_lines else []
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    level = logging.getLevelName(settings.log_level.upper())
    # One list, changed in place: a logger cached by an earlier configuration (or a test's
    # `capture_logs()`, which edits this list too) follows the processors of the latest.
    _PROCESSORS[:] = [
        _AtLeast(level),
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        stamp,
        _redact,
        *exceptions,
        renderer,
    ]
    structlog.configure(
        processors=_PROCESSORS,
        logger_factory=lambda name="", *_: _LineLogger(name),
        # The level is the first processor's to check (`_AtLeast`), not the bound logger's:
        # a cached logger then follows a later configuration's level too, and a test's
        # `capture_logs()`, which replaces the processors, sees every line.
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        # Outside tests the cache saves work on every line.
        cache_logger_on_first_use=settings.environment != "test",
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            stamp,
            _redact,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exceptions,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RedactQuerySecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
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
