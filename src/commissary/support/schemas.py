"""Request and response bodies of the support chat, and the frames of its WebSocket."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from commissary.core.ids import MAX_ID, Id
from commissary.core.schemas import Input
from commissary.core.text import plain_text, strip_html
from commissary.models import ConversationStatus

MAX_MESSAGE_LENGTH = 4000
MAX_SUBJECT_LENGTH = 200


def _has_text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must contain text once HTML is removed")
    return value


def _text(max_length: int) -> list[object]:
    # The length is checked on what was sent; HTML is then removed and what is left stored.
    return [
        StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length),
        AfterValidator(plain_text),
        AfterValidator(strip_html),
        AfterValidator(_has_text),
    ]


MessageBody = Annotated[str, *_text(MAX_MESSAGE_LENGTH)]
Subject = Annotated[str, *_text(MAX_SUBJECT_LENGTH)]


class ConversationCreate(Input):
    """A new conversation with its first message. HTML is removed from both."""

    subject: Subject
    message: MessageBody


class MessageCreate(Input):
    """A message; HTML is removed and the plain text stored."""

    body: MessageBody


class ConversationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int | None = Field(description="The member who opened it.")
    subject: str
    status: ConversationStatus
    assignee_id: int | None = Field(description="The support member who took it.")
    message_count: int
    created_at: dt.datetime
    updated_at: dt.datetime
    last_message_at: dt.datetime | None
    closed_at: dt.datetime | None
    closed_by_id: int | None


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Increases within a conversation; resume with `after_id`.")
    conversation_id: int
    seq: int = Field(description="1, 2, 3… within the conversation, without gaps.")
    author_id: int | None
    body: str
    created_at: dt.datetime


class TicketRead(BaseModel):
    ticket: str = Field(description="Give it once as `?ticket=` when opening the WebSocket.")
    expires_in: int = Field(description="Seconds it stays valid.")


# --- WebSocket frames a client sends ----------------------------------------------------------


class JoinFrame(Input):
    type: Literal["join"]
    conversation_id: Id
    after_id: Annotated[int, Field(ge=0, le=MAX_ID)] | None = None


class LeaveFrame(Input):
    type: Literal["leave"]
    conversation_id: Id


class MessageFrame(Input):
    type: Literal["message"]
    conversation_id: Id
    body: MessageBody


class TypingFrame(Input):
    type: Literal["typing"]
    conversation_id: Id


class ReadFrame(Input):
    type: Literal["read"]
    conversation_id: Id
    message_id: Id


ClientFrame = Annotated[
    JoinFrame | LeaveFrame | MessageFrame | TypingFrame | ReadFrame, Field(discriminator="type")
]
