"""HTTP endpoints of the cart."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from commissary.cart import service
from commissary.cart.schemas import CartItemIn, CartItemUpdate, CartRead, CheckoutIn
from commissary.core import idempotency
from commissary.core.deps import SessionDep
from commissary.core.ids import IdPath
from commissary.orders.router import order_location, to_read
from commissary.orders.schemas import OrderRead
from commissary.users.dependencies import CurrentUser

router = APIRouter(prefix="/cart", tags=["cart"])


@router.get("", response_model=CartRead)
async def read_cart(user: CurrentUser, session: SessionDep) -> CartRead:
    """Customers: the cart at current menu prices, whether each line can be ordered now, and
    what in each line matches your allergies."""
    return await service.read(session, user)


@router.post("/items", response_model=CartRead)
async def add_cart_item(body: CartItemIn, user: CurrentUser, session: SessionDep) -> CartRead:
    """Add a product with its chosen options, or add to the line with the same product and
    options. A cart holds one restaurant's products: another restaurant's is a 409."""
    await service.add_item(session, user, body)
    return await service.read(session, user)


@router.patch("/items/{item_id}", response_model=CartRead)
async def update_cart_item(
    item_id: IdPath, body: CartItemUpdate, user: CurrentUser, session: SessionDep
) -> CartRead:
    """Set the quantity of a line."""
    await service.set_quantity(session, user, item_id, body.quantity)
    return await service.read(session, user)


@router.delete("/items/{item_id}", response_model=CartRead)
async def delete_cart_item(item_id: IdPath, user: CurrentUser, session: SessionDep) -> CartRead:
    """Remove a line."""
    await service.remove_item(session, user, item_id)
    return await service.read(session, user)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def clear_cart(user: CurrentUser, session: SessionDep) -> Response:
    """Empty the cart."""
    await service.clear(session, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/checkout",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderRead,
    responses=idempotency.RESPONSES,
    openapi_extra=idempotency.OPENAPI_EXTRA,
)
async def checkout_cart(
    user: CurrentUser,
    session: SessionDep,
    request: Request,
    response: Response,
    body: CheckoutIn | None = None,
) -> object:
    """Order the cart's lines by the same rules as `POST /orders` (202 with the order) and
    empty the cart in the same transaction. An empty cart, or a line that cannot be ordered
    now, is a 409 that says why; the cart then stays as it was. An `Idempotency-Key` works
    as on `POST /orders`."""
    data = body or CheckoutIn()

    async def checkout() -> idempotency.Answer:
        order = await service.checkout(session, user, data)
        return idempotency.Answer(202, to_read(order, user), order_location(request, order.id))

    return await idempotency.respond(session, request, response, user.id, data, checkout)
