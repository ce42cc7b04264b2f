"""What the logs say: WebSocket sessions with their real status, and no credential from a
query string; our lines and the libraries' alike."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from commissary.config import Settings
from commissary.core.logging import configure_logging
from commissary.core.middleware import RequestContextMiddleware


async def _session(app: Any, scope_type: str = "websocket") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": scope_type, "path": "/api/v1/support/ws", "headers": []}
    with capture_logs() as logs:
        await RequestContextMiddleware(app)(scope, receive, send)
    return [line for line in logs if line["event"] == "request"]


async def test_an_accepted_websocket_is_logged_as_101_not_500() -> None:
    async def chat(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    [line] = await _session(chat)
    assert (line["method"], line["status"]) == ("WS", 101)


async def test_a_websocket_refused_before_the_handshake_is_logged_as_403() -> None:
    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "websocket.close", "code": 1008})

    [line] = await _session(refuse)
    assert line["status"] == 403


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """This test configures logging as a server does; the others keep theirs."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    processors = list(config["processors"])  # a list the configuration changes in place
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    config["processors"][:] = processors
    structlog.configure(**config)


@pytest.mark.usefixtures("restored_logging")
def test_tickets_and_tokens_in_query_strings_never_reach_the_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(Settings(_env_file=None, log_format="json", log_level="INFO"))  # type: ignore[call-arg]
    # A logger of its own: the server's may have been quietened by a test that ran uvicorn.
    server = logging.getLogger("tests.log_lines.server")
    server.info(
        '%s - "WebSocket %s" [accepted]',
        "127.0.0.1:50000",
        "/api/v1/support/ws?ticket=s3cr3t-ticket&conversation_id=7",
    )
    server.info("GET /api/v1/auth/verify?token=eyJsecret.part HTTP/1.1")
    written = capsys.readouterr().err
    assert "s3cr3t-ticket" not in written
    assert "eyJsecret" not in written
    assert "ticket=[redacted]&conversation_id=7" in written
    assert "token=[redacted]" in written


@pytest.mark.usefixtures("restored_logging")
def test_our_lines_and_the_libraries_lines_are_json_with_the_same_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(Settings(_env_file=None, log_format="json", log_level="INFO"))  # type: ignore[call-arg]
    structlog.contextvars.bind_contextvars(request_id="r-1")
    try:
        ours = structlog.get_logger("commissary.tests")
        ours.debug("below_the_level")
        ours.info("ours", password="hunter2")
        try:
            raise ValueError("boom")
        except ValueError:
            ours.exception("failed")
        logging.getLogger("tests.log_lines.library").warning("theirs %s", "here")
    finally:
        structlog.contextvars.clear_contextvars()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["ours", "failed", "theirs here"]
    assert [line["level"] for line in lines] == ["info", "error", "warning"]
    assert [line["logger"] for line in lines] == ["commissary.tests"] * 2 + [
        "tests.log_lines.library"
    ]
    for line in lines:
        assert line["request_id"] == "r-1"
        assert dt.datetime.fromisoformat(line["timestamp"]).utcoffset() == dt.timedelta(0)
    assert lines[0]["password"] == "***"
    assert "ValueError: boom" in lines[1]["exception"]


@pytest.mark.usefixtures("restored_logging")
def test_a_console_traceback_shows_no_local_variable(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(_env_file=None, log_format="console", log_level="INFO"))  # type: ignore[call-arg]
    log = structlog.get_logger("commissary.tests")

    def sign_in(password: str) -> None:
        token = "-".join(["eyJ", "signed", "token"])  # the values exist only at run time
        raise ValueError(f"boom after {len(token) + len(password)} characters")

    try:
        sign_in("-".join(["hunter2", "password"]))
    except ValueError:
        log.exception("failed")
    written = capsys.readouterr().err
    assert "failed" in written
    assert "ValueError" in written and "boom after" in written
    assert "sign_in" in written  # the frames are there
    assert "hunter2-password" not in written
    assert "eyJ-signed-token" not in written
    assert "\x1b[" not in written  # no colour codes where the lines are not a terminal
