"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for load generation.

httpx builds a request and a response object, runs its middleware-like hooks and parses
headers in Python for every call: at a few hundred requests a second it took most of a core,
on the machine whose cores the server needs. This client does what a load generator needs
and nothing more: one connection, requests written as bytes, the status line, the
``Content-Length`` and the body read back. The servers it talks to (uvicorn) answer every
request with a ``Content-Length``; anything else is an error here, never a silent guess."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

# uvicorn closes a connection idle for 5 s; one idle longer than this is not reused, so a
# request is never written into a connection the server is closing.
KEEPALIVE_EXPIRY = 3.0


class ProtocolError(Exception):
    """An answer this client does not understand (no Content-Length, a cut-off stream)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection to ``host:port``, used by one task at a time."""

    def __init__(self, host: str, port: int, *, time_limit: float = 30.0) -> None:
        self.host, self.port = host, port
        self.time_limit = time_limit  # seconds for a whole exchange
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._idle_since = 0.0

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        try:
            async with asyncio.timeout(self.time_limit):
                return await self._exchange(raw)
        except BaseException:
            self.close()  # a half-read answer leaves the stream unusable
            raise

    async def _exchange(self, raw: bytes) -> Answer:
        if self._writer is None or time.monotonic() - self._idle_since > KEEPALIVE_EXPIRY:
            self.close()
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None and self._writer is not None
        self._writer.write(raw)
        status_line = await self._reader.readline()
        if not status_line:
            raise ProtocolError("connection closed before an answer")
        status = int(status_line.split(b" ", 2)[1])
        length, content_type, close = None, "", False
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"content-type":
                content_type = value.strip().decode()
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise ProtocolError(f"HTTP {status} without Content-Length")
        body = await self._reader.readexactly(length)
        if close:
            self.close()
        self._idle_since = time.monotonic()
        return Answer(status, content_type, body)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
