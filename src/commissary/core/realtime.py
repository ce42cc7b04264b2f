"""The realtime hub: every live channel (support chat, order tracking, dashboards) goes
through it.

- A *channel* is a name (``support.conversation.42``); a connection joins the channels its
  member may see (the caller checks that) and receives what is published on them.
- What is published is already saved: callers publish from ``after_commit``, so a frame
  never announces a row that a rollback took back, and a client that reconnects reads what
  it missed from the database (resume by id).
- Fan-out goes through Redis pub/sub when ``REDIS_URL`` is set: every api process holds one
  pattern subscription (``commissary:rt:*``) read by a task of its own, which reconnects
  with backoff while Redis is away. Meanwhile a publish is delivered in this process, so
  sockets connected here keep working; when the subscription is back, every connection is
  told to *resync* (read what it may have missed from the database), here and, through a
  resync frame, in the other processes. Without Redis, fan-out stays in process.
- Each connection has a bounded send queue. Fan-out never waits for a socket: a connection
  whose queue is full is marked *overflowed* and closed by its own task (close code 4408);
  its client reconnects and resumes by id.

Ephemeral frames (typing, read receipts) use the same path and are simply not saved."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from commissary.core import metrics
from commissary.core.redis import UNAVAILABLE, Outage

log = structlog.get_logger(__name__)

Frame = dict[str, Any]

PREFIX = "commissary:rt:"
RESYNC_CHANNEL = "_resync"
#: The frame a connection's queue receives when it may have missed published frames.
RESYNC: Frame = {"type": "_resync"}
#: The frame every connection's queue receives when the process stops.
STOP: Frame = {"type": "_stop"}

# WebSocket close codes (4000-4999 are the application's own; see the README).
CLOSE_GOING_AWAY = 1001  # the server is stopping; reconnect and resume
CLOSE_INTERNAL_ERROR = 1011
CLOSE_BAD_REQUEST = 4400  # a bad connection parameter
CLOSE_UNAUTHORIZED = 4401  # no, bad, expired or reused ticket/token; revoked token
CLOSE_FORBIDDEN = 4403  # Origin not allowed
CLOSE_NOT_FOUND = 4404  # the conversation asked for at connect is not one the member may see
CLOSE_TOO_SLOW = 4408  # the client did not read fast enough; reconnect and resume by id

MAX_BACKOFF = 2.0


@dataclass(eq=False)
class Subscriber:
    """One connection's end of the hub: the channels it joined and its bounded queue."""

    queue: asyncio.Queue[Frame]
    channels: set[str] = field(default_factory=set)
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, frame: Frame) -> None:
        """Queue ``frame`` without waiting; a full queue marks the connection too slow."""
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed.set()


class Hub:
    """Channels, publish and fan-out for one process (see the module's docstring)."""

    PROBE_EVERY = 1.0

    def __init__(self, redis: Redis | None, *, queue_size: int = 256) -> None:
        self._redis = redis
        self.queue_size = queue_size
        self._channels: dict[str, set[Subscriber]] = {}
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._origin = uuid.uuid4().hex
        self._subscribed_before = False
        self._resync_owed = False
        self._probe_at = 0.0
        self._publishing = Outage("realtime_publish", fallback="fan-out in process")
        self.outage = Outage("realtime", fallback="fan-out in process")
        #: Set while the Redis subscription is live (always, without Redis).
        self.subscribed = asyncio.Event()
        #: Set when the process stops: every connection closes with 1001.
        self.stopping = asyncio.Event()
        if redis is None:
            self.subscribed.set()

    # --- connections and channels ---------------------------------------------------------

    def connect(self) -> Subscriber:
        subscriber = Subscriber(asyncio.Queue(self.queue_size))
        self._subscribers.add(subscriber)
        metrics.WEBSOCKETS.inc()
        return subscriber

    def disconnect(self, subscriber: Subscriber) -> None:
        for channel in list(subscriber.channels):
            self.leave(subscriber, channel)
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)
            metrics.WEBSOCKETS.dec()

    def join(self, subscriber: Subscriber, channel: str) -> None:
        subscriber.channels.add(channel)
        self._channels.setdefault(channel, set()).add(subscriber)

    def leave(self, subscriber: Subscriber, channel: str) -> None:
        subscriber.channels.discard(channel)
        members = self._channels.get(channel)
        if members is not None:
            members.discard(subscriber)
            if not members:
                del self._channels[channel]

    @property
    def connections(self) -> int:
        return len(self._subscribers)

    # --- publishing -----------------------------------------------------------------------

    async def publish(self, channel: str, frame: Frame) -> None:
        """Send ``frame`` to every connection on ``channel``, in every api process. Call it
        once what the frame announces is committed (``core.db.after_commit``)."""
        if self._redis is None:
            self._deliver(channel, frame)
            return
        if (self._subscribed_before and not self.subscribed.is_set()) or (
            self._publishing.is_down and time.monotonic() < self._probe_at
        ):
            # Redis is away (our subscription is down, or a publish failed less than
            # PROBE_EVERY ago: a hung Redis costs one caller a time-out per interval, not
            # every message): deliver here; the resync that follows Redis's return brings
            # the frame's row to the other processes' sockets.
            self._resync_owed = True
            self._deliver(channel, frame)
            return
        try:
            if self._resync_owed:
                await self._announce(self._redis)
            await self._redis.publish(PREFIX + channel, json.dumps(frame, separators=(",", ":")))
        except UNAVAILABLE as exc:
            self._publishing.down(exc)
            self._probe_at = time.monotonic() + self.PROBE_EVERY
            self._resync_owed = True  # the other processes missed this one
            self._deliver(channel, frame)
        else:
            self._publishing.up()

    def _deliver(self, channel: str, frame: Frame) -> None:
        for subscriber in list(self._channels.get(channel, ())):
            subscriber.offer(frame)

    def resync_all(self) -> None:
        for subscriber in list(self._subscribers):
            subscriber.offer(RESYNC)

    # --- the Redis subscription -------------------------------------------------------------

    async def start(self) -> None:
        if self._redis is not None and self._task is None:
            self._task = asyncio.create_task(self._listen(self._redis), name="realtime-hub")

    def stop(self) -> None:
        """The process is stopping: every connection ends now (WebSockets close with 1001,
        event streams end), so the server does not wait for them; clients resume elsewhere."""
        self.stopping.set()
        for subscriber in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                subscriber.queue.put_nowait(STOP)

    async def close(self) -> None:
        self.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self, redis: Redis) -> None:
        backoff = 0.05
        while True:
            pubsub = redis.pubsub()
            try:
                await pubsub.psubscribe(PREFIX + "*")
                backoff = 0.05
                await self._read(pubsub, redis)
            except UNAVAILABLE as exc:
                self.subscribed.clear()
                self.outage.down(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read(self, pubsub: PubSub, redis: Redis) -> None:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            if message["type"] == "psubscribe":
                # Confirmed, first or again: redis-py may also reconnect and subscribe again
                # by itself. Frames published while we were away went nowhere, so after the
                # first subscription every connection re-reads what it may have missed.
                self.subscribed.set()
                self.outage.up()
                if self._subscribed_before or self._resync_owed:
                    self.resync_all()
                    with contextlib.suppress(*UNAVAILABLE):
                        await self._announce(redis)
                self._subscribed_before = True
            elif message["type"] == "pmessage":
                self._dispatch(_text(message["channel"]).removeprefix(PREFIX), message["data"])

    def _dispatch(self, channel: str, data: str | bytes) -> None:
        try:
            frame = json.loads(data)
        except (ValueError, TypeError):
            log.warning("realtime_bad_frame", channel=channel)
            return
        if channel == RESYNC_CHANNEL:
            if frame.get("origin") != self._origin:
                self.resync_all()
            return
        self._deliver(channel, frame)

    async def _announce(self, redis: Redis) -> None:
        """Ask every process's sockets to re-read what they may have missed."""
        await redis.publish(PREFIX + RESYNC_CHANNEL, json.dumps({"origin": self._origin}))
        self._resync_owed = False


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Tickets:
    """Single-use tickets to open a WebSocket from a browser (which cannot send an
    ``Authorization`` header): valid ``ttl`` seconds, redeemed at most once. Kept in Redis
    (only a digest of the ticket is stored) so any api process redeems them, and in process
    without Redis or while it is away."""

    KEY = "commissary:wst:"

    def __init__(self, redis: Redis | None, ttl: int) -> None:
        self._redis = redis
        self.ttl = ttl
        self._memory: dict[str, tuple[str, float]] = {}

    @staticmethod
    def _digest(ticket: str) -> str:
        return hashlib.sha256(ticket.encode()).hexdigest()

    async def issue(self, subject: str) -> str:
        ticket = secrets.token_urlsafe(32)
        key = self._digest(ticket)
        if self._redis is not None:
            try:
                await self._redis.set(self.KEY + key, subject, ex=self.ttl)
                return ticket
            except UNAVAILABLE:
                pass  # this process alone can redeem it
        self._sweep()
        self._memory[key] = (subject, time.monotonic() + self.ttl)
        return ticket

    async def redeem(self, ticket: str) -> str | None:
        """The subject the ticket was issued for, once; None if unknown, used or expired."""
        key = self._digest(ticket)
        kept = self._memory.pop(key, None)
        if kept is not None:
            return kept[0] if kept[1] > time.monotonic() else None
        if self._redis is None:
            return None
        try:
            subject = await self._redis.getdel(self.KEY + key)
        except UNAVAILABLE:
            return None
        return _text(subject) if subject is not None else None

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, ends) in self._memory.items() if ends <= now]:
            del self._memory[key]


class Connection:
    """A WebSocket joined to the hub: frames go out through one lock, in order."""

    def __init__(self, hub: Hub, websocket: WebSocket) -> None:
        self.hub = hub
        self.websocket = websocket
        self.subscriber = hub.connect()
        self._lock = asyncio.Lock()

    def join(self, channel: str) -> None:
        self.hub.join(self.subscriber, channel)

    def leave(self, channel: str) -> None:
        self.hub.leave(self.subscriber, channel)

    async def send(self, frame: Frame) -> None:
        async with self._lock:
            await self.websocket.send_text(json.dumps(frame, separators=(",", ":")))

    async def error(self, code: str, detail: str, **extra: Any) -> None:
        await self.send({"type": "error", "code": code, "detail": detail, **extra})


class Closing(Exception):
    """Raised by a handler to close the socket with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


Receive = Callable[[Connection, Frame], Awaitable[None]]
Deliver = Callable[[Connection, Frame], Awaitable[None]]


async def serve(
    connection: Connection, receive: Receive, deliver: Deliver, *, max_frame_chars: int
) -> None:
    """Run an accepted socket until either side ends it: client frames (JSON objects) go to
    ``receive``; hub frames (including :data:`RESYNC`) to ``deliver``. A bad frame is answered
    with an ``error`` frame and the socket lives on."""
    reader = asyncio.create_task(_read(connection, receive, max_frame_chars))
    writer = asyncio.create_task(_write(connection, deliver))
    overflow = asyncio.create_task(connection.subscriber.overflowed.wait())
    stopping = asyncio.create_task(connection.hub.stopping.wait())
    tasks = {reader, writer, overflow, stopping}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        connection.hub.disconnect(connection.subscriber)
    code, reason = CLOSE_INTERNAL_ERROR, "internal error"
    if overflow in done:
        code, reason = CLOSE_TOO_SLOW, "too slow: reconnect and resume with after_id"
    elif stopping in done:
        code, reason = CLOSE_GOING_AWAY, "server stopping: reconnect and resume"
    else:
        finished = next(iter(done))
        error = finished.exception()
        if error is None or isinstance(error, WebSocketDisconnect | OSError | RuntimeError):
            return  # the client left (or its socket broke): nothing to say
        if isinstance(error, Closing):
            code, reason = error.code, error.reason
        else:
            log.error("websocket_failed", exc_info=error)
    await close(connection.websocket, code, reason)


async def close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with ``code`` unless the socket is already gone."""
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(Exception):
        await websocket.close(code, reason)


async def _read(connection: Connection, receive: Receive, max_frame_chars: int) -> None:
    while True:
        message = await connection.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            await connection.error("invalid_frame", "frames are JSON text, not binary")
        elif len(text) > max_frame_chars:
            await connection.error(
                "frame_too_large", f"a frame is at most {max_frame_chars} characters"
            )
        else:
            try:
                frame = json.loads(text)
            except ValueError:
                frame = None
            if isinstance(frame, dict):
                await receive(connection, frame)
            else:
                await connection.error("invalid_frame", "a frame is a JSON object with a `type`")


async def _write(connection: Connection, deliver: Deliver) -> None:
    queue = connection.subscriber.queue
    while True:
        await deliver(connection, await queue.get())
