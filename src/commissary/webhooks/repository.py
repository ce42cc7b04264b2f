"""Every query of the webhooks package."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.ids import parse_id
from commissary.core.listing import (
    EXACT_OPS,
    ORDER_OPS,
    Filter,
    ListQuery,
    ListSpec,
    bounded_int,
    fetch_page,
    parse_bool,
    parse_datetime,
)
from commissary.models import (
    DeliveryStatus,
    Role,
    User,
    Webhook,
    WebhookDelivery,
    restaurant_staff,
)

WEBHOOK_LIST = ListSpec(
    filters={
        "is_active": Filter(Webhook.is_active, parse_bool, EXACT_OPS),
        "created_at": Filter(Webhook.created_at, parse_datetime, ORDER_OPS),
    },
    sortable={"id": Webhook.id, "created_at": Webhook.created_at, "url": Webhook.url},
    default_sort=("id",),
    search=(Webhook.url,),
)

DELIVERY_LIST = ListSpec(
    filters={
        "status": Filter(WebhookDelivery.status, DeliveryStatus),
        "event_type": Filter(WebhookDelivery.event_type),
        "event_id": Filter(WebhookDelivery.event_id, parse_id, ORDER_OPS),
        "order_id": Filter(WebhookDelivery.order_id, parse_id),
        "attempts": Filter(WebhookDelivery.attempts, bounded_int(0, 1000), ORDER_OPS),
        "last_response_code": Filter(
            WebhookDelivery.last_response_code, bounded_int(100, 599), ORDER_OPS
        ),
        "created_at": Filter(WebhookDelivery.created_at, parse_datetime, ORDER_OPS),
    },
    sortable={
        "id": WebhookDelivery.id,
        "event_id": WebhookDelivery.event_id,
        "created_at": WebhookDelivery.created_at,
        "attempts": WebhookDelivery.attempts,
        "status": WebhookDelivery.status,
    },
    default_sort=("-id",),
    search=(WebhookDelivery.event_type, WebhookDelivery.last_error),
)


async def get_owned(
    session: AsyncSession, owner_id: int, webhook_id: int, *, lock: bool = False
) -> Webhook | None:
    stmt = select(Webhook).where(Webhook.id == webhook_id, Webhook.owner_id == owner_id)
    if lock:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def count_owned(session: AsyncSession, owner_id: int) -> int:
    stmt = select(func.count()).select_from(Webhook).where(Webhook.owner_id == owner_id)
    return int(await session.scalar(stmt) or 0)


async def list_owned(
    session: AsyncSession, owner_id: int, query: ListQuery
) -> tuple[list[Webhook], int]:
    stmt = select(Webhook).where(Webhook.owner_id == owner_id)
    return await fetch_page(session, stmt, query, Webhook.id)


async def list_deliveries(
    session: AsyncSession, webhook_id: int, query: ListQuery
) -> tuple[list[WebhookDelivery], int]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    return await fetch_page(session, stmt, query, WebhookDelivery.id)


async def get_delivery(
    session: AsyncSession, webhook_id: int, delivery_id: int, *, lock: bool = False
) -> WebhookDelivery | None:
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def delivery_to_send(
    session: AsyncSession, delivery_id: int
) -> tuple[WebhookDelivery, Webhook] | None:
    """The delivery and its webhook, the delivery locked while it is being sent."""
    stmt = (
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id == delivery_id)
        .with_for_update(of=WebhookDelivery)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


async def subscribers(session: AsyncSession) -> Sequence[Row[int, list[str], int, Role]]:
    """The active webhooks of active members who may still have them: id, event types,
    owner id and role."""
    stmt = (
        select(Webhook.id, Webhook.event_types, Webhook.owner_id, User.role)
        .join(User, User.id == Webhook.owner_id)
        .where(
            Webhook.is_active.is_(True),
            User.is_active.is_(True),
            User.role.in_((Role.DEVELOPER, Role.ADMIN)),
        )
        .order_by(Webhook.id)
    )
    return (await session.execute(stmt)).all()


async def granted_restaurants(
    session: AsyncSession, developer_ids: set[int]
) -> dict[int, frozenset[int]]:
    """The restaurants granted to each of these developers (one statement)."""
    if not developer_ids:
        return {}
    rows = await session.execute(
        select(restaurant_staff.c.user_id, restaurant_staff.c.restaurant_id).where(
            restaurant_staff.c.user_id.in_(sorted(developer_ids))
        )
    )
    found: dict[int, set[int]] = {}
    for user_id, restaurant_id in rows:
        found.setdefault(user_id, set()).add(restaurant_id)
    return {user_id: frozenset(ids) for user_id, ids in found.items()}


async def insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """Insert the deliveries in one statement; their ids in the order given."""
    result = await session.execute(
        insert(WebhookDelivery).returning(WebhookDelivery.id, sort_by_parameter_order=True),
        rows,
    )
    return list(result.scalars().all())
