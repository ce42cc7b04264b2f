"""HTTP and WebSocket endpoints of the support chat, and the WebSocket tickets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, WebSocket, status

from commissary.core.deps import RuntimeDep, SessionDep
from commissary.core.ids import MAX_ID, IdPath
from commissary.core.listing import ListQuery, Page, list_query, parse_list_query
from commissary.core.realtime import Closing, Connection, close, serve
from commissary.core.runtime import Runtime
from commissary.support import repository as repo
from commissary.support import service
from commissary.support.schemas import (
    ConversationCreate,
    ConversationRead,
    MessageCreate,
    MessageRead,
    TicketRead,
)
from commissary.support.socket import MAX_FRAME_CHARS, SupportSocket
from commissary.users.dependencies import CurrentUser
from commissary.users.socket_auth import open_socket

router = APIRouter(prefix="/support", tags=["support"])
tickets_router = APIRouter(tags=["realtime"])


class message_list_query(list_query):  # noqa: N801 - a dependency factory, like list_query
    """The message list's query: ``after_id`` is the route's own parameter, not a filter."""

    def __call__(self, request: Request) -> ListQuery:
        query = request.query_params
        params = {
            key: ",".join(query.getlist(key)) if key == "sort" or key.endswith("__in") else raw
            for key, raw in query.items()
            if key != "after_id"
        }
        return parse_list_query(params, self.spec)


@tickets_router.post("/ws-tickets", status_code=status.HTTP_201_CREATED, response_model=TicketRead)
async def create_ws_ticket(user: CurrentUser, runtime: RuntimeDep) -> TicketRead:
    """A single-use ticket to open a WebSocket as this member (browsers cannot send an
    `Authorization` header on a WebSocket): valid `WS_TICKET_TTL` seconds (60), bound to the
    account's current sign-in (a password change or sign-out everywhere voids it)."""
    ticket = await runtime.tickets.issue(f"{user.id}:{user.token_key}")
    return TicketRead(ticket=ticket, expires_in=runtime.tickets.ttl)


@router.post("/conversations", status_code=status.HTTP_201_CREATED, response_model=ConversationRead)
async def open_conversation(
    body: ConversationCreate, user: CurrentUser, session: SessionDep
) -> object:
    """Open a conversation with the support team, with its first message."""
    return await service.open_conversation(session, user, body)


@router.get("/conversations", response_model=Page[ConversationRead])
async def list_conversations(
    user: CurrentUser,
    query: Annotated[ListQuery, Depends(list_query(repo.CONVERSATION_LIST))],
    session: SessionDep,
) -> object:
    """Members see the conversations they opened; `support` and `admin` see all (the queue:
    `status=open&assignee_id__isnull=true`)."""
    items, total = await service.list_conversations(session, user, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@router.get("/conversations/{conversation_id}", response_model=ConversationRead)
async def read_conversation(
    conversation_id: IdPath, user: CurrentUser, session: SessionDep
) -> object:
    """One conversation (another member's is a 404)."""
    return await service.get_visible(session, user, conversation_id)


@router.post("/conversations/{conversation_id}/take", response_model=ConversationRead)
async def take_conversation(
    conversation_id: IdPath, user: CurrentUser, session: SessionDep
) -> object:
    """`support`/`admin`: take an open conversation (409 if another support member has it)."""
    return await service.take(session, user, conversation_id)


@router.post("/conversations/{conversation_id}/close", response_model=ConversationRead)
async def close_conversation(
    conversation_id: IdPath, user: CurrentUser, session: SessionDep
) -> object:
    """Either side closes the conversation; no message can be sent in it afterwards."""
    return await service.close(session, user, conversation_id)


@router.get("/conversations/{conversation_id}/messages", response_model=Page[MessageRead])
async def list_messages(
    conversation_id: IdPath,
    user: CurrentUser,
    query: Annotated[ListQuery, Depends(message_list_query(repo.MESSAGE_LIST))],
    session: SessionDep,
    after_id: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="Only messages after this id.")
    ] = None,
) -> object:
    """The conversation's messages, oldest first; `after_id` gives those after the last one
    a client has (to catch up after a reconnect)."""
    items, total = await service.list_messages(session, user, conversation_id, after_id, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageRead,
)
async def send_message(
    conversation_id: IdPath, body: MessageCreate, user: CurrentUser, session: SessionDep
) -> object:
    """Send a message (the REST twin of the WebSocket's `message` frame). A closed
    conversation is a 409; a support member's first reply takes the conversation."""
    return await service.send(session, user, conversation_id, body.body)


@router.websocket("/ws")
async def support_socket(websocket: WebSocket) -> None:
    """The live chat; see the README's "Support chat" for frames and close codes."""
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    query = dict(websocket.query_params)
    try:
        user, key = await open_socket(runtime, websocket)
        connection = Connection(runtime.realtime, websocket)
        chat = SupportSocket(runtime, user, key)
        try:
            await chat.start(connection, query)
        except BaseException:
            runtime.realtime.disconnect(connection.subscriber)
            raise
    except Closing as exc:
        await close(websocket, exc.code, exc.reason)
        return
    await serve(connection, chat.receive, chat.deliver, max_frame_chars=MAX_FRAME_CHARS)
