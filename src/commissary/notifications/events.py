"""The event stream's hook that turns committed order events into notifications.

Runs in the sequencer's transaction (see ``commissary.events.sequencer``), so each event is
seen once: one query for the restaurants' names, one for their owners, one INSERT for every
notification of the batch, and one outbox job that mails the important ones. Which event
concerns whom is ``notifications.rules``. The first completed order of a referred member
converts their referral here too (``users.referrals``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.events.sequencer import StreamEvent, on_sequenced
from commissary.models import (
    Notification,
    NotificationKind,
    Restaurant,
    User,
    restaurant_owner,
)
from commissary.notifications import customer_mail
from commissary.notifications.rules import COMPLETED_TYPES, EMAILED, Audience, Draft, drafts
from commissary.users import referrals


async def _names(session: AsyncSession, restaurant_ids: set[int]) -> dict[int, str]:
    rows = await session.execute(
        select(Restaurant.id, Restaurant.name).where(Restaurant.id.in_(restaurant_ids))
    )
    return {row.id: row.name for row in rows}


async def _owners(session: AsyncSession, restaurant_ids: set[int]) -> dict[int, list[int]]:
    rows = await session.execute(
        select(restaurant_owner.c.restaurant_id, restaurant_owner.c.user_id).where(
            restaurant_owner.c.restaurant_id.in_(restaurant_ids)
        )
    )
    owners: dict[int, list[int]] = {rid: [] for rid in restaurant_ids}
    for restaurant_id, user_id in rows:
        owners[restaurant_id].append(user_id)
    return owners


def _recipients(draft: Draft, event: StreamEvent, owners: dict[int, list[int]]) -> list[int]:
    if draft.user_id is not None:
        return [draft.user_id]
    if draft.audience is Audience.CUSTOMER:
        return [event.customer_id] if event.customer_id is not None else []
    if draft.audience is Audience.COURIER:
        return [event.courier_id] if event.courier_id is not None else []
    return owners.get(event.restaurant_id, [])


def _row(user_id: int, draft: Draft, event: StreamEvent | None, at: dt.datetime) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "order_id": event.order_id if event else None,
        "event_id": event.id if event else None,
        "kind": draft.kind,
        "title": draft.title,
        "body": draft.body,
        "created_at": at,
    }


async def _of_existing_members(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows whose member still exists: an id carried in an event's data (a courier's)
    may name an account deleted since, and one such row must not fail the whole batch."""
    ids = {row["user_id"] for row in rows}
    if not ids:
        return rows
    found = set((await session.scalars(select(User.id).where(User.id.in_(ids)))).all())
    return [row for row in rows if row["user_id"] in found]


def _first_completions(events: Sequence[StreamEvent]) -> dict[int, dt.datetime]:
    first: dict[int, dt.datetime] = {}
    for event in events:
        if event.type in COMPLETED_TYPES and event.customer_id is not None:
            first.setdefault(event.customer_id, event.created_at)
    return first


@on_sequenced
async def notify(session: AsyncSession, events: Sequence[StreamEvent]) -> None:
    """Write the notifications of a batch of committed events; mail the important ones."""
    restaurant_ids = {event.restaurant_id for event in events}
    if not restaurant_ids:
        return
    names = await _names(session, restaurant_ids)
    needs_owners = False
    planned: list[tuple[StreamEvent, Draft]] = []
    for event in events:
        for draft in drafts(event, names.get(event.restaurant_id, "the restaurant")):
            planned.append((event, draft))
            needs_owners |= draft.audience is Audience.OWNERS
    owners = await _owners(session, restaurant_ids) if needs_owners else {}
    rows = [
        _row(user_id, draft, event, event.created_at)
        for event, draft in planned
        for user_id in _recipients(draft, event, owners)
    ]
    rows = await _of_existing_members(session, rows)
    for referrer_id, name, at in await referrals.convert(session, _first_completions(events)):
        rows.append(_row(referrer_id, _converted(name), None, at))
    if not rows:
        return
    # Each row's kind comes back with its id, so no order is needed: unsorted RETURNING is
    # one multi-row INSERT on every engine.
    inserted = await session.execute(
        insert(Notification).returning(Notification.id, Notification.kind), rows
    )
    customer_mail.mail_later(session, [row.id for row in inserted if row.kind in EMAILED])


def _converted(name: str) -> Draft:
    return Draft(
        Audience.CUSTOMER,
        NotificationKind.REFERRAL_CONVERTED,
        "Your referral placed a first order",
        f"{name}, who joined with your referral code, completed a first order.",
    )
