"""`WS /api/v1/support/ws`: the support chat's live side, on the realtime hub.

A client joins conversations (`join`, with `after_id` to resume), and sends `message`,
`typing` and `read` frames; it receives `message`, `typing`, `read`, `conversation`,
`joined` and `error` frames. Messages are saved before they are published, and each
joined conversation keeps a cursor (last id and ``seq`` sent): a frame already sent is
dropped, a gap in ``seq`` (a frame still on its way from another process, or lost while
Redis was away) is filled from the database, so a client misses nothing and gets nothing
twice."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from commissary.core.deps import unit_of_work
from commissary.core.errors import DomainError
from commissary.core.ids import MAX_ID, parse_id
from commissary.core.realtime import (
    CLOSE_BAD_REQUEST,
    CLOSE_NOT_FOUND,
    Closing,
    Connection,
    Frame,
)
from commissary.core.runtime import Runtime
from commissary.models import User
from commissary.support import repository as repo
from commissary.support import service
from commissary.support.schemas import (
    MAX_MESSAGE_LENGTH,
    ClientFrame,
    ConversationRead,
    JoinFrame,
    LeaveFrame,
    MessageFrame,
    ReadFrame,
    TypingFrame,
)
from commissary.users.socket_auth import member as _member

FRAMES: TypeAdapter[Any] = TypeAdapter(ClientFrame)
MAX_FRAME_CHARS = MAX_MESSAGE_LENGTH * 2 + 1024  # a message's JSON, escapes included
CATCH_UP_PAGE = 200


@dataclass
class Cursor:
    last_id: int
    last_seq: int


class SupportSocket:
    """One member's support socket (see the module's docstring)."""

    def __init__(self, runtime: Runtime, user: User, token_key: str) -> None:
        self.runtime = runtime
        self.user_id, self.role, self.token_key = user.id, user.role, token_key
        self._user = user
        self.cursors: dict[int, Cursor] = {}
        self._conversations: dict[int, str] = {}  # the last `updated_at` sent of each
        self._cursor_lock = asyncio.Lock()

    async def start(self, connection: Connection, query: dict[str, str]) -> None:
        if service.is_staff(self._user):
            connection.join(service.QUEUE_CHANNEL)
        if "conversation_id" in query:
            try:
                conversation_id = parse_id(query["conversation_id"])
                after_id = int(query["after_id"]) if "after_id" in query else None
            except ValueError:
                raise Closing(CLOSE_BAD_REQUEST, "conversation_id and after_id are ids") from None
            if after_id is not None and not 0 <= after_id <= MAX_ID:
                raise Closing(CLOSE_BAD_REQUEST, "after_id is an id, or 0")
            try:
                await self.join(connection, conversation_id, after_id)
            except DomainError as exc:
                raise Closing(CLOSE_NOT_FOUND, exc.detail[:100]) from None

    # --- what the client sends ----------------------------------------------------------------

    async def receive(self, connection: Connection, raw: Frame) -> None:
        try:
            frame = FRAMES.validate_python(raw)
        except ValidationError as exc:
            fields = sorted({".".join(map(str, e["loc"][1:] or e["loc"])) for e in exc.errors()})
            await connection.error(
                "invalid_frame",
                f"invalid frame: {', '.join(fields) or 'type'}",
                errors=[
                    {"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                    for e in exc.errors(include_url=False, include_input=False)
                ],
            )
            return
        try:
            await self._dispatch(connection, frame)
        except DomainError as exc:
            extra = {"retry_after": int(exc.headers["Retry-After"])} if exc.status == 429 else {}
            await connection.error(exc.code, exc.detail, **extra)

    async def _dispatch(self, connection: Connection, frame: object) -> None:
        match frame:
            case JoinFrame(conversation_id=conversation_id, after_id=after_id):
                await self.join(connection, conversation_id, after_id)
            case LeaveFrame(conversation_id=conversation_id):
                connection.leave(service.channel(conversation_id))
                self.cursors.pop(conversation_id, None)
            case MessageFrame(conversation_id=conversation_id, body=body):
                async with unit_of_work(self.runtime.sessionmaker) as session:
                    user = await _member(session, self.user_id, self.token_key)
                    await service.send(session, user, conversation_id, body)
            case TypingFrame(conversation_id=conversation_id):
                await self._ephemeral(conversation_id, {"type": "typing"})
            case ReadFrame(conversation_id=conversation_id, message_id=message_id):
                await self._ephemeral(conversation_id, {"type": "read", "message_id": message_id})

    async def _ephemeral(self, conversation_id: int, frame: Frame) -> None:
        """Typing and read receipts: not saved, only passed on to the conversation's
        other sockets. The member must have joined the conversation."""
        if conversation_id not in self.cursors:
            raise DomainError("join the conversation first", code="not_joined")
        frame = {**frame, "conversation_id": conversation_id, "member_id": self.user_id}
        await self.runtime.realtime.publish(service.channel(conversation_id), frame)

    async def join(
        self, connection: Connection, conversation_id: int, after_id: int | None
    ) -> None:
        """Subscribe first, then read where to start: a message committed meanwhile is in
        the database or on its way through the hub, and the cursor sends it once."""
        async with self.runtime.sessionmaker() as session:
            conversation = await service.get_visible(session, self._user, conversation_id)
            read = ConversationRead.model_validate(conversation).model_dump(mode="json")
        connection.join(service.channel(conversation_id))
        async with self._cursor_lock:
            async with self.runtime.sessionmaker() as session:
                last_id, last_seq = await repo.position(session, conversation_id, after_id)
            self.cursors[conversation_id] = Cursor(last_id, last_seq)
        if after_id is not None:
            await self._catch_up(connection, conversation_id)
        await connection.send(
            {"type": "joined", "conversation_id": conversation_id, "conversation": read}
        )

    # --- what the hub delivers --------------------------------------------------------------

    async def deliver(self, connection: Connection, frame: Frame) -> None:
        kind = frame.get("type")
        if kind == "_resync":
            for conversation_id in list(self.cursors):
                await self._catch_up(connection, conversation_id)
        elif kind == "message":
            await self._message(connection, frame)
        elif kind == "conversation":
            conversation = frame["conversation"]
            if self._conversations.get(conversation["id"]) != conversation["updated_at"]:
                self._conversations[conversation["id"]] = conversation["updated_at"]
                await connection.send(frame)
        elif frame.get("member_id") != self.user_id:  # typing, read: not one's own
            await connection.send(frame)

    async def _message(self, connection: Connection, frame: Frame) -> None:
        conversation_id = frame["conversation_id"]
        async with self._cursor_lock:
            cursor = self.cursors.get(conversation_id)
            if cursor is None or frame["seq"] <= cursor.last_seq:
                return  # left, or already sent
            if frame["seq"] == cursor.last_seq + 1:
                await connection.send(frame)
                cursor.last_id, cursor.last_seq = frame["id"], frame["seq"]
                return
        await self._catch_up(connection, conversation_id)  # a gap: read it in order

    async def _catch_up(self, connection: Connection, conversation_id: int) -> None:
        async with self._cursor_lock:
            cursor = self.cursors.get(conversation_id)
            while cursor is not None:
                async with self.runtime.sessionmaker() as session:
                    page = await service.messages_after(
                        session, conversation_id, cursor.last_id, CATCH_UP_PAGE
                    )
                for message in page:
                    if message.seq > cursor.last_seq:
                        await connection.send(service.message_frame(message))
                    cursor.last_id, cursor.last_seq = message.id, max(cursor.last_seq, message.seq)
                if len(page) < CATCH_UP_PAGE:
                    return
