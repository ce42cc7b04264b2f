"""Order use cases: place, read, cancel, delete and advance orders. Services flush, never
commit; every status change goes through ``state.transition``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import hours
from commissary.core import jobs
from commissary.core.db import utcnow
from commissary.core.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from commissary.core.listing import ListQuery
from commissary.core.money import money_text, round_money
from commissary.deliveries import tracking
from commissary.events.sequencer import SEQUENCE_JOB
from commissary.models import (
    Fulfillment,
    Order,
    OrderEvent,
    OrderStatus,
    Role,
    User,
)
from commissary.ops import audit
from commissary.orders import acceptance, adhoc, pricing
from commissary.orders import repository as repo
from commissary.orders.kitchen import PROCESS_JOB
from commissary.orders.schemas import OrderCreate, OrderItemIn
from commissary.orders.state import ACTIVE, TERMINAL, Actor, created_event, transition
from commissary.users.auth_service import Member

# The order's message when the restaurant turns an order down without saying why.
REJECTED = "Rejected by the restaurant."
# Developers order for the restaurants they integrate (an ordering platform's key), as
# waiters do for theirs.
STAFF_ROLES = frozenset({Role.WAITER, Role.DEVELOPER, Role.RESTAURATEUR, Role.ADMIN})
SCOPE_BY_ROLE = {
    Role.ADMIN: "all",
    Role.SALES: "all",
    Role.SUPPORT: "all",
    Role.RESTAURATEUR: "restaurants",
    Role.WAITER: "waiter",
    Role.DEVELOPER: "integrations",
    Role.CUSTOMER: "customer",
}


@dataclass(frozen=True)
class Orderer:
    customer_id: int | None
    customer_name: str
    allergies: list[str]
    waiter_id: int | None


async def _orderer(session: AsyncSession, user: User | Member, data: OrderCreate) -> Orderer:
    """Who the order is for: the signed-in customer, or for staff a registered customer
    (``customer_id``) or a walk-in (``customer_name`` + declared ``allergies``)."""
    if user.role is Role.CUSTOMER:
        if not user.is_verified:
            raise Forbidden("verify your e-mail address before ordering", code="email_not_verified")
        for field in ("customer_id", "customer_name", "allergies"):
            if getattr(data, field) is not None:
                raise Forbidden(f"only staff may set `{field}`", code="staff_only_field")
        adhoc.refuse_customer(data.items)
        return Orderer(user.id, user.full_name, list(user.allergies), None)
    if user.role not in STAFF_ROLES:
        raise Forbidden("only customers and restaurant staff place orders")
    waiter_id = user.id if user.role is Role.WAITER else None
    if data.customer_id is not None:
        customer = await session.get(User, data.customer_id)
        if customer is None or customer.role is not Role.CUSTOMER or not customer.is_active:
            raise InvalidInput(
                f"customer {data.customer_id} does not exist", code="unknown_customer"
            )
        allergies = [*customer.allergies, *(data.allergies or [])]
        return Orderer(customer.id, customer.full_name, allergies, waiter_id)
    if data.customer_name is None:
        raise InvalidInput(
            "staff orders need `customer_id` or `customer_name`", code="customer_required"
        )
    return Orderer(None, data.customer_name, list(data.allergies or []), waiter_id)


def _check_menu(
    data: OrderCreate, items: Sequence[OrderItemIn], rows: Sequence[Row[Any]]
) -> Row[Any]:
    """Validate the menu lines against the menu; return the row of one of the products, which
    carries the restaurant they all belong to."""
    wanted = {item.product_id for item in items}
    unknown = sorted(wanted - {row.id for row in rows})
    if unknown:
        raise InvalidInput(
            f"unknown products: {unknown}", code="unknown_product", extra={"product_ids": unknown}
        )
    restaurants = {row.restaurant_id for row in rows}
    if len(restaurants) > 1:
        raise InvalidInput(
            "all items of an order must come from one restaurant", code="mixed_restaurants"
        )
    first = rows[0]
    if data.restaurant_id is not None and data.restaurant_id != first.restaurant_id:
        raise InvalidInput(
            f"the items belong to restaurant {first.restaurant_id}, not {data.restaurant_id}",
            code="restaurant_mismatch",
        )
    unavailable = sorted(row.id for row in rows if not row.is_available)
    if unavailable:
        raise Conflict(
            f"products not available now: {unavailable}",
            code="product_unavailable",
            extra={"product_ids": unavailable},
        )
    if len({row.currency for row in rows}) > 1:
        raise InvalidInput("the items are priced in different currencies", code="mixed_currencies")
    _check_open(first)
    return first


def _check_open(first: Any) -> None:
    """The restaurant takes orders now."""
    if not first.restaurant_is_active:
        raise Conflict(
            f"restaurant {first.restaurant_id} is not taking orders", code="restaurant_inactive"
        )
    if not first.is_accepting_orders:
        raise Conflict(
            f"{first.restaurant_name} has paused taking orders", code="restaurant_paused"
        )
    if not hours.is_open(first.opening_hours, first.timezone, utcnow()):
        raise Conflict(f"{first.restaurant_name} is closed now", code="restaurant_closed")


async def _within_limits(session: AsyncSession, user: User | Member, data: OrderCreate) -> None:
    """Per-member placement rate and per-line quantity ceiling (`ORDER_*` settings)."""
    settings = jobs.runtime_of(session).settings
    too_many = [
        i.product_id
        for i in data.items
        if isinstance(i, OrderItemIn) and i.quantity > settings.order_max_quantity
    ]
    if too_many:
        raise InvalidInput(
            f"at most {settings.order_max_quantity} of one product per order",
            code="quantity_too_large",
            extra={"product_ids": too_many},
        )
    count, retry = await jobs.runtime_of(session).limiter.hit(
        f"orders:member:{user.id}", settings.order_rate_window
    )
    if count > settings.order_rate_limit:
        raise TooManyRequests(
            f"at most {settings.order_rate_limit} orders per {settings.order_rate_window} s",
            code="order_rate_limited",
            headers={"Retry-After": str(retry)},
        )


def _priced_lines(
    data: OrderCreate, rows: Sequence[Row[Any]], groups: pricing.Groups, max_quantity: int
) -> list[pricing.PricedLine]:
    """Menu lines priced from the menu, then the ad-hoc lines priced by staff."""
    items, ad_hoc = adhoc.split(data.items)
    lines = pricing.priced_lines(items, rows, groups, max_quantity)
    return lines + adhoc.priced_lines(ad_hoc, lines, max_quantity) if ad_hoc else lines


async def _menu_of(
    session: AsyncSession,
    user: User | Member,
    data: OrderCreate,
    items: Sequence[OrderItemIn],
    read: Sequence[Row[Any]] | None,
) -> tuple[Sequence[Row[Any]], Any]:
    """The menu rows of the order's menu lines (``read`` already, or read now) and the
    restaurant's row (from the menu, or for ad-hoc lines only, ``adhoc.restaurant``); a
    waiter orders only where they serve."""
    if items:
        rows = read
        if rows is None:
            rows = await repo.menu_rows(session, {i.product_id for i in items}, user.id)
        menu = _check_menu(data, items, rows)
    else:
        rows, menu = [], await adhoc.restaurant(session, user, data.restaurant_id)
        _check_open(menu)
    if user.role in (Role.WAITER, Role.DEVELOPER) and not menu.is_staff:
        what = "a waiter" if user.role is Role.WAITER else "an integrator"
        raise Forbidden(
            f"you are not {what} of restaurant {menu.restaurant_id}",
            code="not_restaurant_staff",
        )
    return rows, menu


def order_total(
    session: AsyncSession, lines: Sequence[pricing.PricedLine], currency: str
) -> Decimal:
    """The sum of ``lines``, exact, within the ``ORDER_MAX_TOTAL`` ceiling."""
    total = round_money(sum((line.line_total for line in lines), start=Decimal(0)))
    ceiling = jobs.runtime_of(session).settings.order_max_total
    if total > ceiling:
        raise InvalidInput(
            f"an order may total at most {money_text(ceiling)} {currency}",
            code="order_total_too_large",
        )
    return total


@dataclass(slots=True)
class PlacedOrder:
    """An order just placed, as its answer shows it: the values written, not an ORM object
    (building and instrumenting an ``Order`` cost a placement more than its pricing). What
    happens to the order later starts from the stored row."""

    id: int
    restaurant_id: int
    customer_id: int | None
    customer_name: str
    waiter_id: int | None
    status: OrderStatus
    fulfillment: Fulfillment
    delivery_address: str | None
    note: str | None
    allergies: list[str]
    total: Decimal
    currency: str
    version: int
    order_time: dt.datetime
    updated_at: dt.datetime
    lines: list[pricing.PricedLine]
    message: str | None = None
    completed_time: dt.datetime | None = None
    accepted_at: dt.datetime | None = None
    ready_by: dt.datetime | None = None
    courier_id: int | None = None
    handover_code: str | None = None
    courier_lat: float | None = None
    courier_lon: float | None = None
    courier_located_at: dt.datetime | None = None


ORDER_FIELDS = (
    "restaurant_id",
    "customer_id",
    "customer_name",
    "waiter_id",
    "status",
    "fulfillment",
    "delivery_address",
    "note",
    "allergies",
    "total",
    "currency",
    "version",
    "order_time",
    "updated_at",
)


def menu_ids(data: OrderCreate) -> set[int]:
    """The products of the order's menu lines (not its ad-hoc ones)."""
    return {item.product_id for item in adhoc.split(data.items)[0]}


async def place_order(
    session: AsyncSession,
    user: User | Member,
    data: OrderCreate,
    menu: Sequence[Row[Any]] | None = None,
) -> PlacedOrder:
    """Validate and price the order from the menu, store it as ``pending`` with its
    ``created`` event, and wake the order processing for after the commit. ``menu``: the
    rows of ``repository.menu_rows`` for ``menu_ids(data)``, when the caller read them
    already (``repository.caller_and_menu``).

    The hot path of the system: one read (products with their restaurant; a second one for
    option groups only when a product has any, see ``pricing``), one write (order,
    lines, event and audit row together, see ``repository.insert_order``). The pending order
    is its own job record, so no outbox row is needed."""
    await _within_limits(session, user, data)
    orderer = await _orderer(session, user, data)
    items = adhoc.split(data.items)[0]
    rows, restaurant = await _menu_of(session, user, data, items, menu)
    if user.role is Role.RESTAURATEUR and not await repo.is_restaurant_owner(
        session, user.id, restaurant.restaurant_id
    ):
        raise Forbidden("restaurateurs order only in their own restaurants")
    groups = await pricing.groups_for(session, items, rows)
    max_quantity = jobs.runtime_of(session).settings.order_max_quantity
    lines = _priced_lines(data, rows, groups, max_quantity)
    total = order_total(session, lines, restaurant.currency)
    now = utcnow()
    order = PlacedOrder(
        id=0,
        restaurant_id=restaurant.restaurant_id,
        customer_id=orderer.customer_id,
        customer_name=orderer.customer_name,
        waiter_id=orderer.waiter_id,
        status=OrderStatus.PENDING,
        fulfillment=data.fulfillment,
        delivery_address=data.delivery_address,
        note=data.note,
        allergies=orderer.allergies,
        total=total,
        currency=restaurant.currency,
        version=1,
        order_time=now,
        updated_at=now,
        lines=lines,
    )
    actor = Actor.CUSTOMER if user.role is Role.CUSTOMER else Actor.STAFF
    order.id = await repo.insert_order(
        session,
        {name: getattr(order, name) for name in ORDER_FIELDS},
        [line.row() for line in lines],
        created_event(order, actor=actor, actor_id=user.id),
        audit.row(actor_id=user.id, action="order.create", entity="order"),
    )
    jobs.wake(session, PROCESS_JOB)
    jobs.wake(session, SEQUENCE_JOB)
    return order


def scope_of(user: User) -> str:
    return SCOPE_BY_ROLE.get(user.role, "none")


def actor_in_scope(user: User | Member) -> Actor | None:
    """The part ``user`` plays for every order it can see (see ``scope_of``): restaurant staff
    for admins and restaurateurs (who only see their restaurants' orders), the person the
    order is for (or the waiter who keyed it in) for customers and waiters, and nobody who
    may act for sales and support."""
    if user.role in (Role.ADMIN, Role.RESTAURATEUR):
        return Actor.STAFF
    if user.role in (Role.CUSTOMER, Role.WAITER):
        return Actor.CUSTOMER
    return None


async def get_visible(session: AsyncSession, user: User, order_id: int) -> Order:
    """The order if ``user`` may see it; someone else's order is a 404, not a 403."""
    order = await repo.get(session, order_id, repo.visibility(scope_of(user), user.id))
    if order is None:
        raise NotFound(f"order {order_id} not found", code="order_not_found")
    return order


async def list_orders(
    session: AsyncSession, user: User, query: ListQuery
) -> tuple[list[Order], int]:
    return await repo.list_page(session, query, repo.visibility(scope_of(user), user.id))


async def events(
    session: AsyncSession, user: User, order_id: int, query: ListQuery
) -> tuple[list[OrderEvent], int]:
    """The order's history; the courier's positions only for the order's customer."""
    order = await get_visible(session, user, order_id)
    events, total = await repo.events_page(session, order_id, query)
    if order.customer_id != user.id:
        events = tracking.without_positions(events)
    return events, total


async def _locked_for(session: AsyncSession, user: User, order_id: int) -> tuple[Order, Actor]:
    """The order under its row lock, if ``user`` may see it, and the part they play."""
    order = await repo.lock(session, order_id, repo.visibility(scope_of(user), user.id))
    if order is None:
        raise NotFound(f"order {order_id} not found", code="order_not_found")
    actor = actor_in_scope(user)
    if actor is None:
        raise Forbidden("you cannot act on this order")
    return order, actor


async def cancel(session: AsyncSession, user: User, order_id: int, reason: str | None) -> Order:
    order, actor = await _locked_for(session, user, order_id)
    _cancel_locked(session, user, order, actor, reason)
    await tracking.end_delivery(session, order)
    return order


def _cancel_locked(
    session: AsyncSession, user: User, order: Order, actor: Actor, reason: str | None
) -> Order:
    if actor is Actor.STAFF and order.status is OrderStatus.AWAITING_ACCEPTANCE:
        acceptance.reject_locked(session, order, user.id, reason or REJECTED)
        return order
    default = (
        "Cancelled by the customer." if actor is Actor.CUSTOMER else "Cancelled by the restaurant."
    )
    transition(
        session,
        order,
        OrderStatus.CANCELLED,
        actor=actor,
        actor_id=user.id,
        message=reason or default,
        data={"reason": reason} if reason else None,
    )
    audit.record(
        session, actor_id=user.id, action="order.cancel", entity="order", entity_id=order.id
    )
    return order


async def delete_or_cancel(session: AsyncSession, user: User, order_id: int) -> Order | None:
    """The cafeteria's DELETE: an active order is cancelled (and returned), a finished one is
    deleted (None). An order on its way (ready, out for delivery) is a 409."""
    order, actor = await _locked_for(session, user, order_id)
    if order.status in ACTIVE:
        _cancel_locked(session, user, order, actor, None)
        await tracking.end_delivery(session, order)
        return order
    if order.status not in TERMINAL:
        raise Conflict(
            f"order {order_id} is {order.status.value}: it can be neither cancelled "
            "nor deleted now",
            code="order_not_deletable",
        )
    await repo.delete_order(session, order_id)
    audit.record(
        session,
        actor_id=user.id,
        action="order.delete",
        entity="order",
        entity_id=order_id,
        status=order.status.value,
    )
    return None


async def set_status(
    session: AsyncSession, user: User, order_id: int, target: OrderStatus, message: str | None
) -> Order:
    """Restaurant staff move an order along (``manual`` kitchens) or cancel it."""
    order = await _staff_locked(session, user, order_id)
    if order.status is OrderStatus.AWAITING_ACCEPTANCE and target is OrderStatus.IN_PROGRESS:
        acceptance.accept_locked(session, order, user.id, None)
        return order
    if order.status is OrderStatus.AWAITING_ACCEPTANCE and target is OrderStatus.CANCELLED:
        acceptance.reject_locked(session, order, user.id, message or REJECTED)
        return order
    if target is OrderStatus.CANCELLED and message is None:
        message = "Cancelled by the restaurant."
    transition(session, order, target, actor=Actor.STAFF, actor_id=user.id, message=message)
    if target in TERMINAL:
        await tracking.end_delivery(session, order)
    audit.record(
        session,
        actor_id=user.id,
        action="order.status",
        entity="order",
        entity_id=order.id,
        status=target.value,
    )
    return order


async def _staff_locked(session: AsyncSession, user: User, order_id: int) -> Order:
    """The order under its row lock, for its restaurant's owners and admins: anyone else who
    may see it gets a 403, anyone who may not a 404."""
    order, actor = await _locked_for(session, user, order_id)
    if actor is not Actor.STAFF:
        raise Forbidden(
            "only the restaurant's owners and admins act on an order for the restaurant",
            code="not_restaurant_owner",
        )
    return order


async def accept(
    session: AsyncSession, user: User, order_id: int, prep_minutes: int | None
) -> Order:
    """The restaurant accepts an order awaiting acceptance (see ``acceptance``)."""
    order = await _staff_locked(session, user, order_id)
    acceptance.accept_locked(session, order, user.id, prep_minutes)
    return order


async def reject(session: AsyncSession, user: User, order_id: int, reason: str) -> Order:
    """The restaurant refuses an order awaiting acceptance, saying why."""
    order = await _staff_locked(session, user, order_id)
    acceptance.reject_locked(session, order, user.id, reason)
    return order
