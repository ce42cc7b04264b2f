"""Request and response bodies of the webhooks, and the event types one may subscribe to."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from commissary.core.schemas import Input, NotNull
from commissary.core.text import plain_text
from commissary.models import DeliveryStatus, OrderStatus

ALL_EVENTS = "*"
# The order event types (the `type` of each order event). Status changes are
# `status.<status>`; `awaiting_acceptance` is the status of orders a manual kitchen must
# accept.
EVENT_TYPES: tuple[str, ...] = (
    "created",
    "edited",
    "accepted",
    "rejected",
    "acceptance.overdue",
    "delivery.offered",
    "courier.assigned",
    "courier.released",
    "picked_up",
    "courier.location",
    "delivered",
    *sorted({f"status.{status.value}" for status in OrderStatus} | {"status.awaiting_acceptance"}),
)
MAX_EVENT_TYPES = len(EVENT_TYPES)


def _known_types(values: list[str]) -> list[str]:
    unknown = [v for v in values if v != ALL_EVENTS and v not in EVENT_TYPES]
    if unknown:
        raise ValueError(
            f"unknown event type {unknown[0]!r}; use '*' or some of: {', '.join(EVENT_TYPES)}"
        )
    if ALL_EVENTS in values and len(values) > 1:
        raise ValueError("'*' already means every event type: give it alone")
    return list(dict.fromkeys(values))


EventTypes = Annotated[
    list[Annotated[str, Field(max_length=40)]],
    Field(
        min_length=1,
        max_length=MAX_EVENT_TYPES,
        description='The order event types to receive, or `["*"]` for all of them.',
        json_schema_extra={"items": {"type": "string", "enum": [ALL_EVENTS, *EVENT_TYPES]}},
    ),
    AfterValidator(_known_types),
]
Url = Annotated[
    str,
    AfterValidator(plain_text),
    Field(
        min_length=1,
        max_length=2000,
        description="Where deliveries are POSTed: https (http on loopback in development).",
        examples=["https://example.com/hooks/commissary"],
    ),
]


class WebhookCreate(Input):
    """A receiver URL and the event types it receives."""

    url: Url
    event_types: EventTypes
    is_active: bool = True


class WebhookUpdate(Input):
    """The fields to change; the URL is checked again."""

    url: Annotated[Url | None, NotNull] = None
    event_types: Annotated[EventTypes | None, NotNull] = None
    is_active: Annotated[bool | None, NotNull] = None


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    event_types: list[str]
    is_active: bool = Field(description="An inactive webhook receives nothing.")
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookWithSecret(WebhookRead):
    """A webhook with its signing secret: shown when it is made and when it is rotated."""

    secret: str = Field(
        description="`whsec_` + base64; the key of each delivery's `webhook-signature` "
        "(Standard Webhooks). Shown only now: keep it."
    )


class WebhookDeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Also the `webhook-id` header, as `msg_<id>`.")
    webhook_id: int
    event_id: int = Field(description="The event's position in the order event stream.")
    order_id: int
    event_type: str
    payload: dict[str, Any] = Field(description="The JSON body that is POSTed.")
    status: DeliveryStatus
    attempts: int
    last_response_code: int | None = Field(description="The receiver's last HTTP status.")
    last_error: str | None
    next_attempt_at: dt.datetime | None = Field(description="When the next try is due.")
    created_at: dt.datetime
    delivered_at: dt.datetime | None
