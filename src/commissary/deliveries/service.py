"""Courier use cases: take an offered delivery, give it back, pick it up, hand it over with
the customer's code, share the position on the way. Services flush, never commit; each
use case holds the order's row lock, so two couriers (or two requests of one) serialize
and each sees what the previous one left.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.db import utcnow
from commissary.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
)
from commissary.core.listing import ListQuery
from commissary.deliveries import offers, tracking
from commissary.deliveries import repository as repo
from commissary.deliveries.schemas import DeliveryItemRead, DeliveryRead
from commissary.events.sequencer import LOCATION_TYPE
from commissary.models import Fulfillment, Order, OrderStatus, Restaurant, Role, User
from commissary.ops import audit
from commissary.orders import repository as orders_repo
from commissary.orders.state import Actor, record, transition

MAX_HANDOVER_ATTEMPTS = 5


class DeliveryTaken(Conflict):
    code = "delivery_taken"


class NotYourDelivery(Forbidden):
    code = "not_your_delivery"


class HandoverCodeWrong(InvalidInput):
    code = "handover_code_wrong"
    keep_changes = True  # the attempt stays counted although the request fails


class HandoverLocked(DomainError):
    status, code = 423, "handover_locked"
    keep_changes = True  # the attempt that locks it stays counted


def to_read(order: Order, place: Restaurant, *, with_customer: bool) -> DeliveryRead:
    """A delivery as a courier sees it; ``with_customer`` adds the customer's name (for the
    courier who took it, and admins)."""
    return DeliveryRead(
        order_id=order.id,
        status=order.status,
        restaurant_id=order.restaurant_id,
        restaurant_name=place.name,
        restaurant_address=place.address,
        delivery_address=order.delivery_address or "",
        items=[
            DeliveryItemRead(product_name=line.product_name, quantity=line.quantity)
            for line in order.lines
        ],
        total=order.total,
        currency=order.currency,
        offered_at=order.offered_at,
        courier_id=order.courier_id,
        customer_name=order.customer_name if with_customer else None,
        handover_attempts_left=max(0, MAX_HANDOVER_ATTEMPTS - order.handover_attempts),
        is_handover_locked=order.handover_locked_at is not None,
        updated_at=order.updated_at,
    )


async def read_all(
    session: AsyncSession, orders: Sequence[Order], *, with_customer: bool
) -> list[DeliveryRead]:
    """``orders`` as deliveries, with their restaurants read in one query."""
    places = await repo.restaurants(session, {order.restaurant_id for order in orders})
    return [
        to_read(order, places[order.restaurant_id], with_customer=with_customer) for order in orders
    ]


def _courier_filter(user: User) -> int | None:
    """Couriers see their own; admins (None) everyone's."""
    return None if user.role is Role.ADMIN else user.id


async def available(
    session: AsyncSession, user: User, query: ListQuery
) -> tuple[list[DeliveryRead], int]:
    orders, total = await repo.available_page(session, query, _courier_filter(user))
    return await read_all(session, orders, with_customer=False), total


async def deliveries(
    session: AsyncSession, user: User, query: ListQuery
) -> tuple[list[DeliveryRead], int]:
    orders, total = await repo.deliveries_page(session, query, _courier_filter(user))
    return await read_all(session, orders, with_customer=True), total


async def _locked_delivery(session: AsyncSession, order_id: int) -> Order:
    """The delivery order under its row lock; any other order is a 404 to couriers."""
    order = await orders_repo.lock(session, order_id)
    if order is None or order.fulfillment is not Fulfillment.DELIVERY:
        raise NotFound(f"delivery {order_id} not found", code="delivery_not_found")
    return order


async def _locked_mine(session: AsyncSession, courier: User, order_id: int) -> Order:
    order = await _locked_delivery(session, order_id)
    if order.courier_id != courier.id:
        raise NotYourDelivery(f"delivery {order_id} is not yours: accept it first")
    return order


async def read(session: AsyncSession, order: Order) -> DeliveryRead:
    return (await read_all(session, [order], with_customer=True))[0]


async def accept(session: AsyncSession, courier: User, order_id: int) -> Order:
    """Take an offered delivery. The first courier wins: the others find it taken (409
    ``delivery_taken``) once the winner's transaction has released the row lock. Taking
    one's own delivery again changes nothing."""
    order = await _locked_delivery(session, order_id)
    if order.courier_id == courier.id:
        return order
    if order.courier_id is not None:
        raise DeliveryTaken(f"delivery {order_id} was taken by another courier")
    if order.offered_at is None or order.status not in repo.OFFERABLE:
        raise Conflict(
            f"order {order_id} is not on offer ({order.status.value})",
            code="delivery_not_offered",
            extra={"current_status": order.status.value},
        )
    order.courier_id = courier.id
    order.offered_at = None
    record(
        session,
        order,
        "courier.assigned",
        actor=Actor.COURIER,
        actor_id=courier.id,
        data={"courier_id": courier.id},
    )
    audit.record(
        session, actor_id=courier.id, action="delivery.accept", entity="order", entity_id=order.id
    )
    return order


async def refuse(session: AsyncSession, courier: User, order_id: int) -> None:
    """Say no to an offer: it is no longer listed for this courier. A courier who had taken
    the delivery gives it back (``courier.released``) until they pick it up, and it is
    offered again to the others."""
    order = await _locked_delivery(session, order_id)
    if order.courier_id is not None and order.courier_id != courier.id:
        raise DeliveryTaken(f"delivery {order_id} was taken by another courier")
    if order.courier_id == courier.id:
        if order.status not in repo.OFFERABLE:
            raise Conflict(
                f"delivery {order_id} is {order.status.value}: it can no longer be given back",
                code="delivery_not_releasable",
                extra={"current_status": order.status.value},
            )
        order.courier_id = None
        record(
            session,
            order,
            "courier.released",
            actor=Actor.COURIER,
            actor_id=courier.id,
            data={"courier_id": courier.id},
        )
        offers.offer(session, order)
    elif order.offered_at is None:
        raise Conflict(f"order {order_id} is not on offer", code="delivery_not_offered")
    if not await repo.has_refused(session, order_id, courier.id):
        repo.add_refusal(session, order_id, courier.id)


async def pick_up(session: AsyncSession, courier: User, order_id: int) -> Order:
    """The courier has the order in hand: ``ready`` → ``out_for_delivery`` (``picked_up``)."""
    order = await _locked_mine(session, courier, order_id)
    if order.status is not OrderStatus.READY:
        raise Conflict(
            f"delivery {order_id} is {order.status.value}, not ready to be picked up",
            code="order_not_ready",
            extra={"current_status": order.status.value},
        )
    transition(
        session,
        order,
        OrderStatus.OUT_FOR_DELIVERY,
        actor=Actor.COURIER,
        actor_id=courier.id,
        type_="picked_up",
    )
    return order


def _out_for_delivery(order: Order) -> None:
    if order.status is not OrderStatus.OUT_FOR_DELIVERY:
        raise Conflict(
            f"delivery {order.id} is {order.status.value}, not out for delivery",
            code="not_out_for_delivery",
            extra={"current_status": order.status.value},
        )


def _check_code(order: Order, given: str) -> None:
    """Compare in constant time; count a wrong code and lock the handover at the
    ``MAX_HANDOVER_ATTEMPTS``-th one."""
    if order.handover_locked_at is not None:
        raise HandoverLocked(
            f"too many wrong codes: the handover of order {order.id} is locked; "
            "the restaurant completes it once the customer has the order",
        )
    expected = order.handover_code or ""
    if expected and hmac.compare_digest(given.encode(), expected.encode()):
        return
    order.handover_attempts += 1
    left = MAX_HANDOVER_ATTEMPTS - order.handover_attempts
    if left <= 0:
        order.handover_locked_at = utcnow()
        raise HandoverLocked(
            f"wrong code {MAX_HANDOVER_ATTEMPTS} times: the handover of order {order.id} is locked",
            extra={"attempts_left": 0},
        )
    raise HandoverCodeWrong(
        f"wrong handover code; {left} attempts left",
        extra={
            "attempts_left": left,
            "errors": [{"in": "body", "field": "handover_code", "message": "wrong code"}],
        },
    )


async def complete(session: AsyncSession, courier: User, order_id: int, code: str) -> Order:
    """Hand the order over with the customer's code: ``out_for_delivery`` → ``completed``
    (``delivered``), and the courier's positions are dropped."""
    order = await _locked_mine(session, courier, order_id)
    _out_for_delivery(order)
    _check_code(order, code)
    transition(
        session,
        order,
        OrderStatus.COMPLETED,
        actor=Actor.COURIER,
        actor_id=courier.id,
        type_="delivered",
    )
    await tracking.end_delivery(session, order)
    audit.record(
        session, actor_id=courier.id, action="delivery.complete", entity="order", entity_id=order.id
    )
    return order


async def locate(
    session: AsyncSession, courier: User, order_id: int, lat: float, lon: float
) -> Order:
    """The courier's position while carrying the order: the last one on the order, each one
    a ``courier.location`` event. At most ``DELIVERY_LOCATION_RATE_LIMIT`` per window and
    courier (all their deliveries together)."""
    runtime = jobs.runtime_of(session)
    settings = runtime.settings
    count, retry = await runtime.limiter.hit(
        f"deliveries:location:{courier.id}", settings.delivery_location_rate_window
    )
    if count > settings.delivery_location_rate_limit:
        raise TooManyRequests(
            f"at most {settings.delivery_location_rate_limit} positions per "
            f"{settings.delivery_location_rate_window} s",
            code="location_rate_limited",
            headers={"Retry-After": str(retry)},
        )
    order = await _locked_mine(session, courier, order_id)
    _out_for_delivery(order)
    order.courier_lat, order.courier_lon = lat, lon
    order.courier_located_at = utcnow()
    record(
        session,
        order,
        LOCATION_TYPE,
        actor=Actor.COURIER,
        actor_id=courier.id,
        data={"lat": lat, "lon": lon},
    )
    return order
