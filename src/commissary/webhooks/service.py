"""Webhook use cases: a member's webhooks, their delivery log and replays, and the hook that
turns committed order events into deliveries.

Who owns what: a webhook belongs to the member who made it (`developer` or `admin`); every
other member gets a 404 for it, admins included. Which events a webhook receives: those of
the orders its owner may read — an admin's, every order's; a developer's, the orders of the
restaurants granted to the developer (``restaurant_ids``). A courier's position is never in
a delivery (the live stream shows it to the order's customer alone). The rule is applied when
an event is sequenced, with the owner's role and state at that moment: a deactivated or
demoted owner's webhooks receive nothing more. Services flush; the boundary commits;
deliveries are sent by jobs."""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.db import utcnow
from commissary.core.errors import Conflict, NotFound, field_error, reject_nulls
from commissary.core.listing import ListQuery
from commissary.core.money import money_text
from commissary.events.sequencer import LOCATION_TYPE, StreamEvent, on_sequenced
from commissary.models import DeliveryStatus, Role, User, Webhook, WebhookDelivery
from commissary.ops import audit
from commissary.webhooks import repository as repo
from commissary.webhooks import signing, urls
from commissary.webhooks.schemas import ALL_EVENTS, WebhookCreate, WebhookUpdate

DELIVER_JOB = "webhooks.deliver"
MAX_WEBHOOKS_PER_OWNER = 20


async def _check_url(session: AsyncSession, url: str) -> None:
    try:
        await urls.check(url, jobs.runtime_of(session).settings)
    except urls.RefusedUrl as exc:
        raise field_error("url", f"url {exc}", code="webhook_url_refused") from None


async def create(session: AsyncSession, owner: User, body: WebhookCreate) -> Webhook:
    """A new webhook with a new secret (which the answer shows, once)."""
    await _check_url(session, body.url)
    if await repo.count_owned(session, owner.id) >= MAX_WEBHOOKS_PER_OWNER:
        raise Conflict(
            f"at most {MAX_WEBHOOKS_PER_OWNER} webhooks per member; delete one first",
            code="too_many_webhooks",
        )
    webhook = Webhook(
        owner_id=owner.id,
        url=body.url,
        event_types=body.event_types,
        secret=signing.new_secret(),
        is_active=body.is_active,
    )
    session.add(webhook)
    await session.flush()
    _audit(session, owner, "webhook.create", webhook.id, url=webhook.url)
    return webhook


def _audit(session: AsyncSession, actor: User, action: str, entity_id: int, **data: Any) -> None:
    audit.record(
        session, actor_id=actor.id, action=action, entity="webhook", entity_id=entity_id, **data
    )


async def get_owned(
    session: AsyncSession, owner: User, webhook_id: int, *, lock: bool = False
) -> Webhook:
    webhook = await repo.get_owned(session, owner.id, webhook_id, lock=lock)
    if webhook is None:
        raise NotFound(f"no webhook {webhook_id}", code="webhook_not_found")
    return webhook


async def list_owned(
    session: AsyncSession, owner: User, query: ListQuery
) -> tuple[list[Webhook], int]:
    return await repo.list_owned(session, owner.id, query)


async def update(
    session: AsyncSession, owner: User, webhook_id: int, body: WebhookUpdate
) -> Webhook:
    changes = body.model_dump(exclude_unset=True)
    reject_nulls(changes)
    webhook = await get_owned(session, owner, webhook_id, lock=True)
    if "url" in changes:
        await _check_url(session, changes["url"])
    for name, value in changes.items():
        setattr(webhook, name, value)
    webhook.updated_at = utcnow()
    await session.flush()
    _audit(session, owner, "webhook.update", webhook.id, fields=sorted(changes))
    return webhook


async def rotate_secret(session: AsyncSession, owner: User, webhook_id: int) -> Webhook:
    """A new secret; deliveries sent from now on are signed with it, the old one is void."""
    webhook = await get_owned(session, owner, webhook_id, lock=True)
    webhook.secret = signing.new_secret()
    webhook.updated_at = utcnow()
    await session.flush()
    _audit(session, owner, "webhook.rotate_secret", webhook.id)
    return webhook


async def delete(session: AsyncSession, owner: User, webhook_id: int) -> None:
    """Delete the webhook and its delivery log; deliveries still queued find nothing."""
    webhook = await get_owned(session, owner, webhook_id, lock=True)
    await session.delete(webhook)
    await session.flush()
    _audit(session, owner, "webhook.delete", webhook_id)


async def list_deliveries(
    session: AsyncSession, owner: User, webhook_id: int, query: ListQuery
) -> tuple[list[WebhookDelivery], int]:
    await get_owned(session, owner, webhook_id)
    return await repo.list_deliveries(session, webhook_id, query)


async def replay(
    session: AsyncSession, owner: User, webhook_id: int, delivery_id: int
) -> WebhookDelivery:
    """Send the delivery again now, whatever became of it, with the same `webhook-id`."""
    webhook = await get_owned(session, owner, webhook_id)
    if not webhook.is_active:
        raise Conflict(
            f"webhook {webhook_id} is inactive: activate it to replay", code="webhook_inactive"
        )
    delivery = await repo.get_delivery(session, webhook_id, delivery_id, lock=True)
    if delivery is None:
        raise NotFound(
            f"no delivery {delivery_id} of webhook {webhook_id}", code="delivery_not_found"
        )
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = utcnow()
    await session.flush()
    # The job names the attempt it makes: a retry still scheduled for the same attempt then
    # finds it made and does nothing.
    jobs.enqueue(session, DELIVER_JOB, delivery_id=delivery.id, attempt=delivery.attempts)
    _audit(session, owner, "webhook.replay", webhook_id, delivery_id=delivery.id)
    return delivery


def sees(role: Role, owner_id: int, event: StreamEvent, granted: Set[int] = frozenset()) -> bool:
    """Whether a webhook of an owner with ``role`` receives ``event`` (see the module):
    ``granted`` are the restaurants a developer integrates."""
    if role == Role.ADMIN or event.customer_id == owner_id:
        return True
    return role == Role.DEVELOPER and event.restaurant_id in granted


def payload(event: StreamEvent) -> dict[str, Any]:
    """The JSON body of a delivery: Standard Webhooks' `type`, `timestamp` and `data`, where
    `data` is the event as the live stream shows it, with its order's parties and total."""
    data = {
        **event.public(),
        # Where a courier is goes to the order's customer alone (as on the live stream).
        **({"data": None} if event.type == LOCATION_TYPE else {}),
        "customer_id": event.customer_id,
        "courier_id": event.courier_id,
        "waiter_id": event.waiter_id,
        "fulfillment": event.fulfillment,
        "total": money_text(event.total),
        "currency": event.currency,
    }
    return {"type": event.type, "timestamp": data["created_at"], "data": data}


@on_sequenced
async def record_deliveries(session: AsyncSession, events: Sequence[StreamEvent]) -> None:
    """Run by the sequencer, in its transaction, for each batch of newly positioned events:
    one delivery per subscribed webhook and event (one insert), each sent by a job."""
    hooks = await repo.subscribers(session)
    if not hooks or not events:
        return
    granted = await repo.granted_restaurants(
        session, {hook.owner_id for hook in hooks if hook.role == Role.DEVELOPER}
    )
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for event in events:
        body: dict[str, Any] | None = None
        for hook in hooks:
            wanted = ALL_EVENTS in hook.event_types or event.type in hook.event_types
            mine = granted.get(hook.owner_id, frozenset())
            if not wanted or not sees(hook.role, hook.owner_id, event, mine):
                continue
            body = body or payload(event)
            rows.append(
                {
                    "webhook_id": hook.id,
                    "event_id": event.id,
                    "order_id": event.order_id,
                    "event_type": event.type,
                    "payload": body,
                    "status": DeliveryStatus.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if not rows:
        return
    for delivery_id in await repo.insert_deliveries(session, rows):
        jobs.enqueue(session, DELIVER_JOB, delivery_id=delivery_id, attempt=0)
