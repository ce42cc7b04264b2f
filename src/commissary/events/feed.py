"""One reader's view of the event stream: which events it may see, where it stands, and how
it catches up, shared by the WebSocket and the Server-Sent Events endpoints.

A reader's *cursor* is a position of the whole stream, not only of the events it may see:
the hub carries every event to every api process (one frame per sequenced batch), so a
reader knows each position it has passed. A frame that starts past ``cursor + 1`` means a
batch is still on its way or was lost while Redis was away: the reader then reads the
database up to the stream's committed head, and the frames it later receives for positions
it has passed are dropped. So a reader gets every event it may see once, in order; after a
disconnect it gives its last id back and continues from there."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.events.sequencer import LOCATION_TYPE, OFFER_TYPE, STREAM, enum_text, iso_utc
from commissary.models import EventStreamHead, Order, OrderEvent, Role, User
from commissary.models.catalog import restaurant_owner, restaurant_staff

PAGE = 200
ALL_ORDERS = frozenset({Role.ADMIN, Role.SALES, Role.SUPPORT})


@dataclass(frozen=True)
class Audience:
    """Who reads: the member and, for a restaurateur, the restaurants they own (as of the
    connection; a restaurant given later shows after a reconnect)."""

    member_id: int
    role: Role
    restaurant_ids: frozenset[int] = frozenset()

    @classmethod
    async def of(cls, session: AsyncSession, user: User) -> Audience:
        owned: frozenset[int] = frozenset()
        if user.role in (Role.RESTAURATEUR, Role.DEVELOPER):
            table = restaurant_owner if user.role is Role.RESTAURATEUR else restaurant_staff
            rows = await session.scalars(
                select(table.c.restaurant_id).where(table.c.user_id == user.id)
            )
            owned = frozenset(rows)
        return cls(user.id, user.role, owned)

    def sees(self, event: dict[str, Any]) -> bool:
        """Whether a frame's event is for this reader (the same rule as :meth:`where`)."""
        me = self.member_id
        if self.role in ALL_ORDERS or event.get("customer_id") == me:
            return True
        match self.role:
            case Role.WAITER:
                return bool(event.get("waiter_id") == me)
            case Role.RESTAURATEUR | Role.DEVELOPER:
                return event.get("restaurant_id") in self.restaurant_ids
            case Role.COURIER:
                return event.get("type") == OFFER_TYPE or event.get("courier_id") == me
        return False

    def where(self) -> ColumnElement[bool]:
        """The events this reader may see, as SQL over ``order_event`` joined to its order."""
        me = self.member_id
        if self.role in ALL_ORDERS:
            return true()
        own = Order.customer_id == me
        match self.role:
            case Role.WAITER:
                return or_(own, Order.waiter_id == me)
            case Role.RESTAURATEUR | Role.DEVELOPER:
                if not self.restaurant_ids:
                    return own
                return or_(own, Order.restaurant_id.in_(sorted(self.restaurant_ids)))
            case Role.COURIER:
                return or_(own, OrderEvent.type == OFFER_TYPE, Order.courier_id == me)
        return own

    def public(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as this reader receives it: without its audience, and a courier's
        position only for the order's customer and its courier."""
        shown = {key: value for key, value in event.items() if key not in _AUDIENCE}
        if event["type"] == LOCATION_TYPE and self.member_id not in (
            event.get("customer_id"),
            event.get("courier_id"),
        ):
            shown["data"] = None
        return shown


_AUDIENCE = frozenset({"customer_id", "courier_id", "waiter_id"})


async def head(session: AsyncSession) -> int:
    """The last committed position of the stream."""
    value = await session.scalar(
        select(EventStreamHead.position).where(EventStreamHead.stream == STREAM)
    )
    return int(value or 0)


def _row(row: Any) -> dict[str, Any]:
    """A database row as a frame's event (with its audience)."""
    return {
        "id": row.position,
        "order_id": row.order_id,
        "restaurant_id": row.restaurant_id,
        "sequence": row.sequence,
        "type": row.type,
        "from_status": enum_text(row.from_status),
        "to_status": enum_text(row.to_status),
        "actor": row.actor,
        "data": row.data,
        "created_at": iso_utc(row.created_at),
        "customer_id": row.customer_id,
        "courier_id": row.courier_id,
    }


async def visible_after(
    session: AsyncSession, audience: Audience, after: int, upto: int, limit: int = PAGE
) -> list[dict[str, Any]]:
    """The events this reader may see with ``after < position <= upto``, in order."""
    rows = await session.execute(
        select(
            OrderEvent.position,
            OrderEvent.order_id,
            OrderEvent.sequence,
            OrderEvent.type,
            OrderEvent.from_status,
            OrderEvent.to_status,
            OrderEvent.actor,
            OrderEvent.data,
            OrderEvent.created_at,
            Order.restaurant_id,
            Order.customer_id,
            Order.courier_id,
        )
        .join(Order, Order.id == OrderEvent.order_id)
        .where(OrderEvent.position > after, OrderEvent.position <= upto, audience.where())
        .order_by(OrderEvent.position)
        .limit(limit)
    )
    return [audience.public(_row(row)) for row in rows]


class Cursor:
    """Where one reader stands in the stream (see the module's docstring)."""

    def __init__(self, audience: Audience, position: int) -> None:
        self.audience = audience
        self.position = position

    def take(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """The events of a hub frame this reader gets now, and whether it must catch up
        from the database first (a gap before the frame's first new event)."""
        out: list[dict[str, Any]] = []
        for event in frame.get("events", ()):
            position = event["id"]
            if position <= self.position:
                continue  # passed already
            if position != self.position + 1:
                return out, True
            self.position = position
            if self.audience.sees(event):
                out.append(self.audience.public(event))
        return out, False

    def passed(self, events: list[dict[str, Any]], upto: int) -> Iterator[dict[str, Any]]:
        """Advance over a page read from the database, yielding its events."""
        for event in events:
            self.position = event["id"]
            yield event
        if len(events) < PAGE:
            self.position = max(self.position, upto)
