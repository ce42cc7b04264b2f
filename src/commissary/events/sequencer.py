"""The interface of the event stream's sequencer: what a consumer of committed order events
registers and receives (``StreamEvent``, ``on_sequenced``). The sequencer job itself gives
each committed ``OrderEvent`` its stream position and then calls every registered hook in
the same transaction, so each event reaches each consumer exactly once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class StreamEvent:
    """A committed order event at its stream position ``id``, with its order's parties."""

    id: int
    order_id: int
    sequence: int
    type: str
    from_status: str | None
    to_status: str | None
    actor: str
    actor_id: int | None
    data: dict[str, Any] | None
    created_at: dt.datetime
    restaurant_id: int
    customer_id: int | None
    courier_id: int | None
    waiter_id: int | None
    fulfillment: str
    total: Decimal
    currency: str


Hook = Callable[[AsyncSession, Sequence[StreamEvent]], Awaitable[None]]
HOOKS: list[Hook] = []


def on_sequenced(hook: Hook) -> Hook:
    """Register ``hook(session, events)``: run in the sequencer's transaction right after the
    events got their positions. It may insert rows and enqueue jobs, never do network I/O."""
    if hook not in HOOKS:
        HOOKS.append(hook)
    return hook
