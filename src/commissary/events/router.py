"""The event stream's endpoints: `WS /api/v1/events/ws` and `GET /api/v1/events/stream`
(Server-Sent Events). Both give a reader the order events it may see, live, and resume
after a given id with nothing missed and nothing repeated (see ``events.feed``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse

from commissary.core.errors import DomainError, Unauthorized
from commissary.core.ids import MAX_ID
from commissary.core.realtime import (
    CLOSE_BAD_REQUEST,
    Closing,
    Connection,
    Frame,
    Subscriber,
    close,
    serve,
)
from commissary.core.runtime import Runtime
from commissary.events.feed import PAGE, Audience, Cursor, head, visible_after
from commissary.events.sequencer import CHANNEL
from commissary.models import User
from commissary.users.socket_auth import authenticate, open_socket

router = APIRouter(prefix="/events", tags=["events"])

KEEPALIVE_SECONDS = 15.0
RETRY_MS = 2000
MAX_CLIENT_FRAME = 256


async def _catch_up(runtime: Runtime, cursor: Cursor) -> list[dict[str, Any]]:
    """Read, page by page, the events this reader may see up to the committed head."""
    found: list[dict[str, Any]] = []
    async with runtime.sessionmaker() as session:
        upto = await head(session)
        while cursor.position < upto:
            page = await visible_after(session, cursor.audience, cursor.position, upto)
            found.extend(cursor.passed(page, upto))
            if len(page) < PAGE:
                break
    return found


async def _audience(runtime: Runtime, user: User) -> Audience:
    async with runtime.sessionmaker() as session:
        return await Audience.of(session, user)


async def _start(runtime: Runtime, audience: Audience, last_event_id: int | None) -> Cursor:
    """Where a new reader starts: after ``last_event_id``, or at the head (live only)."""
    if last_event_id is not None:
        return Cursor(audience, last_event_id)
    async with runtime.sessionmaker() as session:
        return Cursor(audience, await head(session))


async def _next(runtime: Runtime, cursor: Cursor, frame: Frame) -> list[dict[str, Any]]:
    """The events a hub frame brings this reader, reading the database first on a gap."""
    if frame.get("type") == "_resync":
        return await _catch_up(runtime, cursor)
    if frame.get("type") != "events":
        return []
    events, gap = cursor.take(frame)
    if gap:
        events += await _catch_up(runtime, cursor)
        more, _ = cursor.take(frame)  # what the frame holds beyond the head read
        events += more
    return events


def _last_event_id(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) > MAX_ID:
        raise ValueError("last_event_id is an event id (0 for the whole history)")
    return int(raw)


# --- WebSocket ----------------------------------------------------------------------------


class EventSocket:
    def __init__(self, runtime: Runtime, cursor: Cursor) -> None:
        self.runtime = runtime
        self.cursor = cursor

    async def receive(self, connection: Connection, frame: Frame) -> None:
        if frame.get("type") == "ping":
            await connection.send({"type": "pong"})
        else:
            await connection.error("invalid_frame", "this socket only takes `ping` frames")

    async def deliver(self, connection: Connection, frame: Frame) -> None:
        for event in await _next(self.runtime, self.cursor, frame):
            await connection.send({"type": "event", "event": event})


@router.websocket("/ws")
async def events_socket(websocket: WebSocket) -> None:
    """The event stream over a WebSocket; see the README's "Event stream"."""
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    query = dict(websocket.query_params)
    try:
        try:
            last_event_id = _last_event_id(query.get("last_event_id"))
        except ValueError as exc:
            raise Closing(CLOSE_BAD_REQUEST, str(exc)) from None
        user, _ = await open_socket(runtime, websocket)
        audience = await _audience(runtime, user)
        connection = Connection(runtime.realtime, websocket)
        try:
            # Join first, then read where to start: an event committed meanwhile is either
            # below the start or in a frame the cursor takes.
            connection.join(CHANNEL)
            cursor = await _start(runtime, audience, last_event_id)
            socket = EventSocket(runtime, cursor)
            backlog = await _catch_up(runtime, cursor)
            for event in backlog:
                await connection.send({"type": "event", "event": event})
            await connection.send({"type": "ready", "last_event_id": cursor.position})
        except BaseException:
            runtime.realtime.disconnect(connection.subscriber)
            raise
    except Closing as exc:
        await close(websocket, exc.code, exc.reason)
        return
    await serve(connection, socket.receive, socket.deliver, max_frame_chars=MAX_CLIENT_FRAME)


# --- Server-Sent Events -------------------------------------------------------------------


def _sse(event: dict[str, Any]) -> str:
    data = json.dumps(event, separators=(",", ":"))
    return f"id: {event['id']}\nevent: order_event\ndata: {data}\n\n"


async def _sse_stream(
    runtime: Runtime, subscriber: Subscriber, cursor: Cursor
) -> AsyncIterator[str]:
    hub = runtime.realtime
    try:
        yield f"retry: {RETRY_MS}\n\n"
        for event in await _catch_up(runtime, cursor):
            yield _sse(event)
        yield f": ready {cursor.position}\n\n"
        while not (hub.stopping.is_set() or subscriber.overflowed.is_set()):
            try:
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    frame = await subscriber.queue.get()
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if frame.get("type") == "_stop":
                break
            for event in await _next(runtime, cursor, frame):
                yield _sse(event)
        # Too slow or stopping: the stream ends and the browser reconnects with the
        # Last-Event-ID it holds.
    finally:
        hub.disconnect(subscriber)


# The `data` of each event of the stream (one JSON object per event).
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "order_id",
        "restaurant_id",
        "sequence",
        "type",
        "from_status",
        "to_status",
        "actor",
        "data",
        "created_at",
    ],
    "properties": {
        "id": {"type": "integer", "description": "The event's position in the stream."},
        "order_id": {"type": "integer"},
        "restaurant_id": {"type": "integer"},
        "sequence": {"type": "integer", "description": "The event's place in its order."},
        "type": {"type": "string", "examples": ["created", "accepted", "status.ready"]},
        "from_status": {"type": ["string", "null"]},
        "to_status": {"type": ["string", "null"]},
        "actor": {"type": "string"},
        "data": {"type": ["object", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
    },
}

# One Server-Sent Event of the stream: its fields, `data` holding the event as JSON.
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["order_event"]},
        "id": {"type": "string", "description": "The event's id (its position)."},
        "retry": {"type": "integer", "description": "Milliseconds before reconnecting."},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": EVENT_SCHEMA,
        },
    },
}

STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An endless `text/event-stream`: `id: <event id>`, `event: order_event`, "
        "`data: <the event as JSON>` (the schema below is one such event).",
        "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
    },
    400: {"description": "`last_event_id` is not an event id."},
    401: {"description": "No, bad, expired or reused ticket or token."},
}


@router.get(
    "/stream",
    summary="Follow the order events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses=STREAM_RESPONSES,
)
async def event_stream(
    request: Request,
    ticket: Annotated[
        str | None, Query(max_length=100, description="From `POST /api/v1/ws-tickets`.")
    ] = None,
    last_event_id: Annotated[
        int | None,
        Query(ge=0, le=MAX_ID, description="Resume after this event id (0: whole history)."),
    ] = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", include_in_schema=False)
    ] = None,
) -> StreamingResponse:
    """The order events the caller may see, as Server-Sent Events: a customer's own orders,
    a restaurateur's restaurants, a waiter's orders, a courier's offers and deliveries,
    everything for admin, sales and support. Authenticate with `Authorization: Bearer` or
    `?ticket=` (a browser's EventSource cannot send headers). Without `last_event_id` (or the
    `Last-Event-ID` header that EventSource sends when it reconnects) the stream starts with
    what happens next; with it, the events after that id come first, in order, then live
    ones. Comment lines (`: keepalive`) keep proxies from closing an idle stream."""
    runtime: Runtime = request.app.state.runtime
    resume = last_event_id
    if resume is None and last_event_id_header is not None:
        try:
            resume = _last_event_id(last_event_id_header.strip())
        except ValueError as exc:
            raise DomainError(
                str(exc), code="invalid_last_event_id", extra={"parameter": "Last-Event-ID"}
            ) from None
    try:
        user, _ = await authenticate(runtime, ticket, request.headers.get("authorization"))
    except Closing as exc:
        raise Unauthorized(exc.reason) from None
    audience = await _audience(runtime, user)
    hub = runtime.realtime
    subscriber = hub.connect()
    try:
        hub.join(subscriber, CHANNEL)
        cursor = await _start(runtime, audience, resume)
    except BaseException:
        hub.disconnect(subscriber)
        raise
    return StreamingResponse(
        _sse_stream(runtime, subscriber, cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
