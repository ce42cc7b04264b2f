"""HTTP endpoints of orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from commissary.apikeys.scopes import KeyScope, require_scope
from commissary.core import idempotency, paths
from commissary.core.deps import SessionDep, StatementSessionDep
from commissary.core.ids import IdPath
from commissary.core.listing import ListQuery, Page, list_query
from commissary.core.paths import API_PREFIX
from commissary.deliveries import offers
from commissary.models import Order, User
from commissary.orders import edits, service
from commissary.orders import repository as repo
from commissary.orders.schemas import (
    AcceptIn,
    CancelIn,
    OrderCreate,
    OrderEdit,
    OrderEventRead,
    OrderRead,
    OrderReplace,
    RejectIn,
    StatusIn,
)
from commissary.orders.state import allowed
from commissary.users.auth_service import Member
from commissary.users.dependencies import CurrentUser, StatementUser

router = APIRouter(prefix="/orders", tags=["orders"])
ORDERS_READ = require_scope(KeyScope.ORDERS_READ)
ORDERS_WRITE = require_scope(KeyScope.ORDERS_WRITE)
ORDERS_PATH = API_PREFIX + router.prefix


COMPUTED = frozenset(
    {"items", "allowed_transitions", "handover_code", "handover_qr", "courier_position"}
)
STORED = tuple(name for name in OrderRead.model_fields if name not in COMPUTED)


def to_read(order: Order | service.PlacedOrder, user: User | Member) -> OrderRead:
    actor = service.actor_in_scope(user)
    return OrderRead.model_validate(
        {
            **{name: getattr(order, name) for name in STORED},
            "items": order.lines,
            "allowed_transitions": allowed(order.status, order.fulfillment, actor),
            **(handover_view(order) if order.customer_id == user.id else {}),
        }
    )


def handover_view(order: Order | service.PlacedOrder) -> dict[str, object]:
    """What only the order's customer sees: the handover code (and its QR text) and the
    courier's last position."""
    code = order.handover_code
    position = None
    if order.courier_located_at is not None:
        position = {
            "lat": order.courier_lat,
            "lon": order.courier_lon,
            "located_at": order.courier_located_at,
        }
    return {
        "handover_code": code,
        "handover_qr": offers.handover_qr(order.id, code) if code else None,
        "courier_position": position,
    }


def order_location(request: Request, order_id: int) -> str:
    # Built by hand: `url_for` scans every route on each call.
    return f"{paths.base_url(request)}{ORDERS_PATH}/{order_id}"


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderRead,
    responses=idempotency.RESPONSES,
    openapi_extra=idempotency.OPENAPI_EXTRA,
    dependencies=[ORDERS_WRITE],
)
async def place_order(
    body: OrderCreate,
    user: StatementUser,
    session: StatementSessionDep,
    request: Request,
    response: Response,
) -> object:
    """Accept an order: priced from the menu, stored as `pending`, processed by a worker
    (allergen check, then the kitchen). Follow it at the `Location` given. Send an
    `Idempotency-Key` to retry safely: the same key and body replay the first answer."""

    async def place() -> idempotency.Answer:
        order = await service.place_order(session, user, body)
        return idempotency.Answer(202, to_read(order, user), order_location(request, order.id))

    return await idempotency.respond(session, request, response, user.id, body, place)


@router.get("", response_model=Page[OrderRead], dependencies=[ORDERS_READ])
async def list_orders(
    user: CurrentUser,
    query: Annotated[ListQuery, Depends(list_query(repo.ORDER_LIST))],
    session: SessionDep,
) -> object:
    """Customers see their own orders, waiters those they keyed in, restaurateurs those of
    their restaurants, admin/sales/support all. Filters: `status`, `restaurant_id`,
    `customer_id`, `waiter_id`, `fulfillment`, `order_time`, `completed_time`, `total`."""
    items, total = await service.list_orders(session, user, query)
    return {
        "items": [to_read(o, user) for o in items],
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
    }


@router.get("/{order_id:int}", response_model=OrderRead, dependencies=[ORDERS_READ])
async def read_order(order_id: IdPath, user: CurrentUser, session: SessionDep) -> OrderRead:
    """One order: a customer's own, a waiter's keyed-in ones, a restaurant's for its owners,
    any for admin, sales and support; any other is a 404."""
    return to_read(await service.get_visible(session, user, order_id), user)


@router.get(
    "/{order_id:int}/events", response_model=Page[OrderEventRead], dependencies=[ORDERS_READ]
)
async def list_order_events(
    order_id: IdPath,
    user: CurrentUser,
    query: Annotated[ListQuery, Depends(list_query(repo.ORDER_EVENT_LIST))],
    session: SessionDep,
) -> object:
    """The order's history, oldest first. Filters: `type`, `sequence`, `actor`,
    `from_status`, `to_status`, `created_at` (with `__op` suffixes); `sort` by `sequence` or
    `created_at`; `limit` (≤ 100), `offset`."""
    items, total = await service.events(session, user, order_id, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


EDIT_ERRORS: dict[int | str, dict[str, object]] = {
    403: {"description": "Sales and support accounts cannot edit orders."},
    409: {
        "description": "The order is no longer `pending` (`order_locked`), or a product, an "
        "option or the restaurant is not available now."
    },
    422: {
        "description": "The body is invalid, an item is unknown or of another restaurant "
        "(`restaurant_mismatch`), a choice of options is refused, a ceiling is passed, or "
        "a delivery has no address; `errors` names each field."
    },
}


@router.patch("/{order_id:int}", response_model=OrderRead, responses=EDIT_ERRORS)
async def edit_order(
    order_id: IdPath, body: OrderEdit, user: CurrentUser, session: SessionDep
) -> OrderRead:
    """Change a `pending` order: only the fields given. New `items` replace the lines and
    are priced and checked like a new order's. For the order's customer, the waiter who
    keyed it in, the restaurant's owners and admins; once the worker has taken the order,
    409 `order_locked`. The history gets an `edited` event."""
    return to_read(await edits.edit(session, user, order_id, body), user)


@router.put("/{order_id:int}", response_model=OrderRead, responses=EDIT_ERRORS)
async def replace_order(
    order_id: IdPath, body: OrderReplace, user: CurrentUser, session: SessionDep
) -> OrderRead:
    """Replace the editable part of a `pending` order: `items`, `fulfillment`,
    `delivery_address` (needed for a delivery) and `note` (left out or null: none). Same
    rules as `PATCH /orders/{order_id}`."""
    return to_read(await edits.edit(session, user, order_id, body), user)


@router.post("/{order_id:int}/cancel", response_model=OrderRead, dependencies=[ORDERS_WRITE])
async def cancel_order(
    order_id: IdPath, user: CurrentUser, session: SessionDep, body: CancelIn | None = None
) -> OrderRead:
    """Cancel a `pending`, `awaiting_acceptance` or `in_progress` order (staff may also cancel
    a `ready` one; staff cancelling an order awaiting acceptance reject it)."""
    order = await service.cancel(session, user, order_id, body.reason if body else None)
    return to_read(order, user)


@router.delete(
    "/{order_id:int}",
    response_model=OrderRead,
    responses={204: {"description": "The finished order was deleted."}},
)
async def delete_order(order_id: IdPath, user: CurrentUser, session: SessionDep) -> object:
    """An active order is cancelled (200 with the order); a completed or cancelled one is
    deleted (204)."""
    order = await service.delete_or_cancel(session, user, order_id)
    if order is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return to_read(order, user)


ACCEPTANCE_ERRORS: dict[int | str, dict[str, object]] = {
    403: {
        "description": "Not one of the restaurant's owners or an admin "
        "(`not_restaurant_owner`); sales and support accounts (`forbidden`)."
    },
    409: {
        "description": "The order is not awaiting acceptance (`order_not_awaiting_acceptance`, "
        "with `current_status`)."
    },
}


@router.post("/{order_id:int}/accept", response_model=OrderRead, responses=ACCEPTANCE_ERRORS)
async def accept_order(
    order_id: IdPath, user: CurrentUser, session: SessionDep, body: AcceptIn | None = None
) -> OrderRead:
    """The restaurant (its owners, or an admin) accepts an order of a `manual` kitchen that
    is `awaiting_acceptance`: it goes `in_progress`. With `prep_minutes` the customer sees
    when it will be ready (`ready_by`). A delivery is then offered to couriers. The history
    gets an `accepted` event."""
    prep_minutes = body.prep_minutes if body else None
    return to_read(await service.accept(session, user, order_id, prep_minutes), user)


@router.post("/{order_id:int}/reject", response_model=OrderRead, responses=ACCEPTANCE_ERRORS)
async def reject_order(
    order_id: IdPath, body: RejectIn, user: CurrentUser, session: SessionDep
) -> OrderRead:
    """The restaurant (its owners, or an admin) refuses an order that is
    `awaiting_acceptance`: it is `cancelled` and the `reason` becomes the order's `message`
    for the customer. The history gets a `rejected` event."""
    return to_read(await service.reject(session, user, order_id, body.reason), user)


@router.post("/{order_id:int}/status", response_model=OrderRead)
async def set_order_status(
    order_id: IdPath, body: StatusIn, user: CurrentUser, session: SessionDep
) -> OrderRead:
    """Restaurant staff: `in_progress → ready → (out_for_delivery →) completed`, or cancel.
    An order `awaiting_acceptance` moved to `in_progress` is accepted, to `cancelled`
    rejected (with `message` as the reason), as by `/accept` and `/reject`."""
    order = await service.set_status(session, user, order_id, body.status, body.message)
    return to_read(order, user)
