"""The courier's position: written while the order is carried, seen by its customer alone,
dropped when the delivery ends."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import inspect, null, update
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.events.sequencer import LOCATION_TYPE
from commissary.models import Order, OrderEvent

COLUMNS = inspect(OrderEvent).column_attrs


async def end_delivery(session: AsyncSession, order: Order) -> None:
    """The delivery is over (completed or cancelled): the order is no longer offered, and the
    courier's positions are forgotten — the last one on the order and the data of every
    ``courier.location`` event. Costs a statement only when a position was recorded."""
    order.offered_at = None
    if order.courier_located_at is None:
        return
    order.courier_lat = order.courier_lon = order.courier_located_at = None
    await session.execute(
        update(OrderEvent)
        .where(OrderEvent.order_id == order.id, OrderEvent.type == LOCATION_TYPE)
        .values(data=null())
        .execution_options(synchronize_session=False)
    )


def without_positions(events: Sequence[OrderEvent]) -> list[OrderEvent]:
    """``events`` as someone other than the order's customer may see them: the data of
    ``courier.location`` events left out. Copies, never the session's rows, so nothing of it
    is written back."""
    return [
        _copy_without_data(event) if event.type == LOCATION_TYPE and event.data else event
        for event in events
    ]


def _copy_without_data(event: OrderEvent) -> OrderEvent:
    columns = {attr.key: getattr(event, attr.key) for attr in COLUMNS}
    return OrderEvent(**{**columns, "data": None})
