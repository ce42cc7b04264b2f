"""The sequencer: gives each committed order event its place in the one event stream, then
hands the events to their consumers and to the live connections.

Events are written with their order, in the order's own transaction, without a position
(a shared counter there would serialise every placement). The ``events.sequence`` job,
woken after every commit that wrote events and also run periodically, takes the committed
events still waiting, in id order, and numbers them from the stream's head:

- the head row (``event_stream_head``) is locked first (a row lock on PostgreSQL, the write
  lock on SQLite), so two runs never overlap: positions are gap-free and never given twice;
- only committed events are visible to the run, so positions follow commit order: once a
  reader has seen position N, no event can later appear below N.

Consumers register with :func:`on_sequenced`. Their hooks run in the sequencer's own
transaction, right after the positions are given: what a hook writes (notifications, webhook
deliveries, jobs through the outbox) commits with the positions, so each event reaches each
consumer exactly once, and a run that fails gives nothing to anyone. The live stream hears of
the batch after the commit (``core.realtime``), in one frame per batch."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.db import after_commit
from commissary.models import EventStreamHead, Order, OrderEvent

log = structlog.get_logger(__name__)

SEQUENCE_JOB = "events.sequence"
#: The realtime hub's channel of the stream: every api process hears every batch.
CHANNEL = "events"
BATCH = 500
#: Event types other parts name (the rest are listed in the README).
OFFER_TYPE = "delivery.offered"
LOCATION_TYPE = "courier.location"
STREAM = "orders"  # the head row of the order events' stream


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEvent:
    """A committed order event with its position (``id``) and what the stream's readers
    need to know of its order to decide who may see it."""

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

    def public(self) -> dict[str, Any]:
        """What a reader receives: the event and its order's ids, without who acted."""
        return {
            "id": self.id,
            "order_id": self.order_id,
            "restaurant_id": self.restaurant_id,
            "sequence": self.sequence,
            "type": self.type,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "actor": self.actor,
            "data": self.data,
            "created_at": iso_utc(self.created_at),
        }

    def frame(self) -> dict[str, Any]:
        """The event as the hub carries it between processes: public part and audience."""
        return {
            **self.public(),
            "customer_id": self.customer_id,
            "courier_id": self.courier_id,
            "waiter_id": self.waiter_id,
        }


def iso_utc(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


Hook = Callable[[AsyncSession, Sequence[StreamEvent]], Awaitable[None]]
_HOOKS: list[Hook] = []


def on_sequenced(hook: Hook) -> Hook:
    """Register ``hook(session, events)``: it runs in the sequencer's transaction for every
    batch of newly positioned events, in position order. It may write rows and enqueue jobs
    (``core.jobs``); it never does network I/O. An exception rolls the whole batch back, to
    be tried again by the next run."""
    if hook not in _HOOKS:
        _HOOKS.append(hook)
    return hook


def enum_text(value: object) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


async def _lock_head(session: AsyncSession) -> int:
    """Lock the head row and read it; the row is created when missing (a fresh database)."""
    head = await session.scalar(
        update(EventStreamHead)
        .where(EventStreamHead.stream == STREAM)
        .values(position=EventStreamHead.position)
        .returning(EventStreamHead.position)
    )
    if head is not None:
        return int(head)
    # No head yet: start after the highest position given (two first runs racing here: one
    # insert fails on the primary key and that run is retried).
    start = await session.scalar(select(func.coalesce(func.max(OrderEvent.position), 0)))
    await session.execute(insert(EventStreamHead).values(stream=STREAM, position=start or 0))
    return start or 0


_COLUMNS = (
    OrderEvent.id,
    OrderEvent.order_id,
    OrderEvent.sequence,
    OrderEvent.type,
    OrderEvent.from_status,
    OrderEvent.to_status,
    OrderEvent.actor,
    OrderEvent.actor_id,
    OrderEvent.data,
    OrderEvent.created_at,
    Order.restaurant_id,
    Order.customer_id,
    Order.waiter_id,
    Order.courier_id,
    Order.fulfillment,
    Order.total,
    Order.currency,
)


@jobs.job(SEQUENCE_JOB, wakeable=True)
async def sequence(session: AsyncSession) -> None:
    """Number one batch of committed events, run the hooks, publish after commit; a full
    batch wakes the job again, so a backlog drains batch after batch."""
    head = await _lock_head(session)
    rows = (
        await session.execute(
            select(*_COLUMNS)
            .join(Order, Order.id == OrderEvent.order_id)
            .where(OrderEvent.position.is_(None))
            .order_by(OrderEvent.id)
            .limit(BATCH)
        )
    ).all()
    if not rows:
        return
    events = [
        StreamEvent(
            id=head + index,
            order_id=row.order_id,
            sequence=row.sequence,
            type=row.type,
            from_status=enum_text(row.from_status),
            to_status=enum_text(row.to_status),
            actor=row.actor,
            actor_id=row.actor_id,
            data=row.data,
            created_at=row.created_at,
            restaurant_id=row.restaurant_id,
            customer_id=row.customer_id,
            courier_id=row.courier_id,
            waiter_id=row.waiter_id,
            fulfillment=enum_text(row.fulfillment) or "",
            total=row.total,
            currency=row.currency,
        )
        for index, row in enumerate(rows, start=1)
    ]
    await session.execute(
        update(OrderEvent),
        [{"id": row.id, "position": event.id} for row, event in zip(rows, events, strict=True)],
    )
    await session.execute(
        update(EventStreamHead)
        .where(EventStreamHead.stream == STREAM)
        .values(position=events[-1].id)
    )
    for hook in _HOOKS:
        await hook(session, events)
    runtime = jobs.runtime_of(session)
    frame = {"type": "events", "events": [event.frame() for event in events]}

    async def _publish() -> None:
        await runtime.realtime.publish(CHANNEL, frame)

    after_commit(session, _publish)
    if len(rows) == BATCH:
        jobs.wake(session, SEQUENCE_JOB)
    log.debug("events_sequenced", first=events[0].id, last=events[-1].id)
