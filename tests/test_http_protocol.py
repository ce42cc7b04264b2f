"""The writes of one turn of the event loop leave in one write (``core.http_protocol``); the
servers that the CLI, WebSocket, proxy and fuzz tests start all run on it."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from commissary.core.http_protocol import (
    GATHER_LIMIT,
    GatheringHttpProtocol,
    GatheringTransport,
)


class Recording(asyncio.Transport):
    """A socket's transport as the kernel would see it: the writes and calls, in order."""

    def __init__(self, extra: dict[str, Any] | None = None) -> None:
        super().__init__(extra)
        self.calls: list[tuple[str, Any]] = []

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.calls.append(("abort", None))

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def get_write_buffer_size(self) -> int:
        return 7

    def is_closing(self) -> bool:
        return self.lost

    lost = False  # the client went away


async def test_the_protocol_answers_a_request_in_one_write() -> None:
    """uvicorn's parser and response cycle on the gathering transport, as `commissary serve`
    runs them: the status line, the headers and the body leave in one write."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
        )
        await send({"type": "http.response.body", "body": b"hello"})

    config = Config(app, lifespan="off", log_level="warning")
    protocol = GatheringHttpProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    socket = Recording(extra={"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 80)})
    protocol.connection_made(socket)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    async with asyncio.timeout(5):
        while not socket.calls:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert len(socket.calls) == 1
    kind, data = socket.calls[0]
    assert kind == "write"
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\nhello")
    protocol.connection_lost(None)


async def test_a_start_and_a_body_written_in_one_turn_leave_in_one_write() -> None:
    socket = Recording()
    transport = GatheringTransport(socket, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
    body = bytearray(b'{"id": 1}')
    transport.write(body)
    body[:] = b"changed!!"  # the caller's buffer changes: what was written does not
    assert socket.calls == []
    assert transport.get_write_buffer_size() == 7 + 25 + 9
    await asyncio.sleep(0)
    assert socket.calls == [("write", b'HTTP/1.1 202 Accepted\r\n\r\n{"id": 1}')]


async def test_chunks_written_in_later_turns_leave_one_by_one() -> None:
    socket = Recording()
    transport = GatheringTransport(socket, asyncio.get_running_loop())
    for chunk in (b"data: 1\n\n", b"data: 2\n\n"):
        transport.write(chunk)
        await asyncio.sleep(0)
    assert socket.calls == [("write", b"data: 1\n\n"), ("write", b"data: 2\n\n")]


async def test_closing_sends_what_was_gathered_first_and_aborting_drops_it() -> None:
    loop = asyncio.get_running_loop()
    closed, aborted, ended = Recording(), Recording(), Recording()
    for socket, end in ((closed, "close"), (aborted, "abort"), (ended, "write_eof")):
        transport = GatheringTransport(socket, loop)
        transport.writelines([b"last ", b"words"])
        getattr(transport, end)()
    await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
    assert closed.calls == [("write", b"last words"), ("close", None)]
    assert aborted.calls == [("abort", None)]
    assert ended.calls == [("write", b"last words"), ("write_eof", None)]


async def test_everything_else_is_the_sockets_own() -> None:
    socket = Recording(extra={"peername": ("127.0.0.1", 5000)})
    transport = GatheringTransport(socket, asyncio.get_running_loop())
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5000)
    assert transport.is_closing() is False


async def test_a_large_answer_goes_on_at_once_so_flow_control_still_applies() -> None:
    socket = Recording()
    transport = GatheringTransport(socket, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"x" * GATHER_LIMIT)
    assert socket.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * GATHER_LIMIT)]
    transport.write(b"tail")
    await asyncio.sleep(0)
    assert socket.calls[1:] == [("write", b"tail")]


async def test_what_was_gathered_for_a_client_that_left_is_dropped() -> None:
    socket = Recording()
    transport = GatheringTransport(socket, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    socket.lost = True
    await asyncio.sleep(0)
    assert socket.calls == []
