"""The HTTP protocol ``commissary serve`` runs: uvicorn's httptools protocol, with what a
response writes in one turn of the event loop sent to the socket in one ``send``.

uvicorn writes a response's status line and headers as soon as the application sends
``http.response.start``, then its body in a second write: two system calls, two TCP
segments, and on a busy host the second costs the kernel (and the client) as much as the
first. An answer is almost always a start and one body sent without the application
waiting in between, so the writes of one turn of the loop are gathered and sent together at
its end. A streamed body (the event stream, a WebSocket taken over from this connection)
still goes out chunk by chunk: a chunk written after an ``await`` that waited starts a new
gathering. Nothing waits longer than the current turn of the loop, a large answer goes on
as soon as it reaches uvicorn's high-water mark (so flow control works as before), and
closing the connection sends what was gathered first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Bytes gathered before they go on without waiting for the end of the turn: uvicorn's own
# high-water mark, at which the transport asks the protocol to stop writing.
GATHER_LIMIT = HIGH_WATER_LIMIT


class GatheringTransport:
    """A transport that sends the writes of one turn of the event loop in one write; every
    other call goes to the socket's own transport (after the gathered bytes, where order
    matters)."""

    __slots__ = ("_loop", "_pending", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0  # bytes pending

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        # A bytearray or a view could change before the turn ends: keep a copy of those.
        self._pending.append(data if isinstance(data, bytes) else bytes(data))
        self._size += len(data)
        if self._size >= GATHER_LIMIT:
            # A large answer goes on at once, so the socket's transport sees it and can
            # ask the protocol to wait (its flow control) as it would have without us.
            self.flush()

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Send what this turn gathered (called at the end of the turn, or before a close)."""
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self._size = 0
        if self._transport.is_closing():
            return  # the client left (or ``abort``): nothing can be delivered
        self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._size = 0
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatheringHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`GatheringTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        gathering: Any = GatheringTransport(transport, self.loop)
        super().connection_made(gathering)
