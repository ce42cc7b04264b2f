"""HTTP endpoints of deliveries: the couriers' side of a delivery order."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from commissary.core.deps import SessionDep
from commissary.core.ids import IdPath
from commissary.core.listing import ListQuery, Page, list_query
from commissary.deliveries import repository as repo
from commissary.deliveries import service
from commissary.deliveries.dependencies import Courier, CourierOrAdmin
from commissary.deliveries.schemas import CourierPosition, DeliveryRead, HandoverIn, LocationIn

router = APIRouter(prefix="/deliveries", tags=["deliveries"])

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {
    404: {"description": "No delivery order with this id (`delivery_not_found`)."}
}
NOT_YOURS: Responses = {
    403: {
        "description": "Not a courier (`courier_only`), or another courier's "
        "delivery, or one not taken yet (`not_your_delivery`)."
    }
}


@router.get("/available", response_model=Page[DeliveryRead])
async def list_available_deliveries(
    user: CourierOrAdmin,
    query: Annotated[ListQuery, Depends(list_query(repo.AVAILABLE_LIST))],
    session: SessionDep,
) -> object:
    """Delivery orders on offer: accepted by their restaurant, taken by no courier, and not
    refused by you. Shows where to fetch and where to bring each one and its total; the
    customer's name only once you take it. Filters: `restaurant_id`, `status`, `total`,
    `offered_at`; `search` in the delivery address; oldest offer first by default. Couriers;
    admins see every offer."""
    items, total = await service.available(session, user, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@router.get("", response_model=Page[DeliveryRead])
async def list_deliveries(
    user: CourierOrAdmin,
    query: Annotated[ListQuery, Depends(list_query(repo.DELIVERY_LIST))],
    session: SessionDep,
) -> object:
    """The deliveries you took, newest first, in every status. Filters: `status`,
    `restaurant_id`, `courier_id`, `total`, `updated_at`; `search` in the delivery address.
    Admins see every courier's."""
    items, total = await service.deliveries(session, user, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@router.post(
    "/{order_id:int}/accept",
    response_model=DeliveryRead,
    responses={
        **NOT_FOUND,
        403: {"description": "Only couriers take deliveries (`courier_only`)."},
        409: {
            "description": "Another courier was first (`delivery_taken`), or the order is "
            "not on offer (`delivery_not_offered`)."
        },
    },
)
async def accept(order_id: IdPath, user: Courier, session: SessionDep) -> DeliveryRead:
    """Take an offered delivery. The first courier wins; every other one gets a 409
    `delivery_taken`. Accepting your own delivery again answers it unchanged."""
    order = await service.accept(session, user, order_id)
    return await service.read(session, order)


@router.post(
    "/{order_id:int}/refuse",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        **NOT_FOUND,
        403: {"description": "Only couriers refuse deliveries (`courier_only`)."},
        409: {
            "description": "Another courier took it (`delivery_taken`), it is not on offer "
            "(`delivery_not_offered`), or you picked it up already "
            "(`delivery_not_releasable`)."
        },
    },
)
async def refuse(order_id: IdPath, user: Courier, session: SessionDep) -> Response:
    """Say no to an offer: it is no longer listed for you. If you had taken it, you give it
    back (until you pick it up) and it is offered to the other couriers again."""
    await service.refuse(session, user, order_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{order_id:int}/pickup",
    response_model=DeliveryRead,
    responses={
        **NOT_FOUND,
        **NOT_YOURS,
        409: {"description": "The order is not `ready` yet, or already left (`order_not_ready`)."},
    },
)
async def pick_up(order_id: IdPath, user: Courier, session: SessionDep) -> DeliveryRead:
    """You have the order in hand: `ready` → `out_for_delivery` (event `picked_up`)."""
    order = await service.pick_up(session, user, order_id)
    return await service.read(session, order)


@router.post(
    "/{order_id:int}/complete",
    response_model=DeliveryRead,
    responses={
        **NOT_FOUND,
        **NOT_YOURS,
        409: {"description": "The order is not `out_for_delivery` (`not_out_for_delivery`)."},
        422: {
            "description": "The code is not six digits, or it is wrong "
            "(`handover_code_wrong`, with `attempts_left`)."
        },
        423: {
            "description": "The fifth wrong code locked the handover (`handover_locked`): "
            "every later code is refused, the right one too. The restaurant completes the "
            "order (`POST /orders/{order_id}/status`) once the customer has it."
        },
    },
)
async def complete(
    order_id: IdPath, body: HandoverIn, user: Courier, session: SessionDep
) -> DeliveryRead:
    """Hand the order over with the six-digit code the customer shows (or its QR code):
    `out_for_delivery` → `completed` (event `delivered`), and your positions on this order
    are dropped. Wrong codes are counted; the fifth locks the handover."""
    order = await service.complete(session, user, order_id, body.handover_code)
    return await service.read(session, order)


@router.post(
    "/{order_id:int}/location",
    response_model=CourierPosition,
    responses={
        **NOT_FOUND,
        **NOT_YOURS,
        409: {"description": "The order is not `out_for_delivery` (`not_out_for_delivery`)."},
        429: {
            "description": "More than `DELIVERY_LOCATION_RATE_LIMIT` positions in the window "
            "(`location_rate_limited`); retry after `Retry-After` seconds."
        },
    },
)
async def send_location(
    order_id: IdPath, body: LocationIn, user: Courier, session: SessionDep
) -> CourierPosition:
    """Your position while you carry the order (`out_for_delivery`): the order's customer
    sees the last one on the order and each one in the event stream (`courier.location`)."""
    order = await service.locate(session, user, order_id, body.lat, body.lon)
    assert order.courier_located_at is not None
    return CourierPosition(lat=body.lat, lon=body.lon, located_at=order.courier_located_at)
