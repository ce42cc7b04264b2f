from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from commissary.core.listing import Page
from commissary.models import NotificationKind


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    order_id: int | None
    event_id: int | None = Field(
        description="The stream position of the order event it reports (`id` in the event "
        "stream); null for a referral's conversion."
    )
    kind: NotificationKind
    title: str
    body: str
    created_at: dt.datetime
    read_at: dt.datetime | None
    emailed_at: dt.datetime | None = Field(
        description="When it was also e-mailed (accepted, rejected, on its way); else null."
    )


class NotificationPage(Page[NotificationRead]):
    unread: int = Field(description="How many of the member's notifications are unread, in all.")


class ReadAllAnswer(BaseModel):
    count: int = Field(description="How many notifications this marked as read.")
