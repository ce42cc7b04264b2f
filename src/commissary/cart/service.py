"""Cart use cases: fill the customer's one cart, read it at current menu prices with allergy
warnings, and check it out through order placement. Services flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.cart import repository as repo
from commissary.cart.schemas import CartItemIn, CartLineRead, CartOptionRead, CartRead, CheckoutIn
from commissary.core import jobs
from commissary.core.db import utcnow
from commissary.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from commissary.core.money import line_total, round_money
from commissary.models import CartItem, Role, User
from commissary.orders import pricing
from commissary.orders import repository as orders_repo
from commissary.orders import service as orders
from commissary.orders.allergens import LineContents, find_conflicts
from commissary.orders.schemas import MAX_LINES, OrderCreate, OrderItemIn


def _customer(user: User) -> None:
    if user.role is not Role.CUSTOMER:
        raise Forbidden("only customers have a cart", code="customers_only")


def _max_quantity(session: AsyncSession, quantity: int) -> None:
    most = jobs.runtime_of(session).settings.order_max_quantity
    if quantity > most:
        raise InvalidInput(f"at most {most} of one line in the cart", code="quantity_too_large")


async def _menu(
    session: AsyncSession, product_ids: set[int], chosen: bool
) -> tuple[dict[int, Row[Any]], pricing.Groups]:
    """The products (with their restaurant's state) and the option groups of those that have
    any, in two queries at most."""
    rows = await orders_repo.menu_rows(session, product_ids)
    with_groups = {row.id for row in rows if row.has_options}
    groups = await pricing.load_groups(session, with_groups | (product_ids if chosen else set()))
    return {row.id: row for row in rows}, groups


async def _same_restaurant(
    session: AsyncSession, lines: Sequence[CartItem], product: Row[Any]
) -> None:
    if not lines:
        return
    held = await orders_repo.menu_rows(session, {lines[0].product_id})
    if held and held[0].restaurant_id != product.restaurant_id:
        raise Conflict(
            f"your cart holds products of {held[0].restaurant_name}; check it out or empty "
            f'it before adding "{product.name}" of {product.restaurant_name}',
            code="cart_other_restaurant",
            extra={"restaurant_id": held[0].restaurant_id},
        )


async def add_item(session: AsyncSession, user: User, data: CartItemIn) -> None:
    """Add a line, or add to the line with the same product and options. A cart holds one
    restaurant's products at a time."""
    _customer(user)
    by_id, groups = await _menu(session, {data.product_id}, bool(data.options))
    product = by_id.get(data.product_id)
    if product is None:
        raise InvalidInput(
            f"product {data.product_id} does not exist",
            code="unknown_product",
            extra={"product_ids": [data.product_id]},
        )
    if not product.is_available:
        raise Conflict(
            f'"{product.name}" is not available now',
            code="product_unavailable",
            extra={"product_ids": [product.id]},
        )
    pricing.choose(product.id, product.name, groups.get(product.id, ()), data.options)
    cart_id = await repo.lock_or_create(session, user.id)
    lines = await repo.items(session, cart_id)
    await _same_restaurant(session, lines, product)
    options = sorted(data.options)
    same = next((x for x in lines if x.product_id == product.id and x.option_ids == options), None)
    if same is not None:
        _max_quantity(session, same.quantity + data.quantity)
        same.quantity += data.quantity
    else:
        _max_quantity(session, data.quantity)
        if len(lines) >= MAX_LINES:
            raise Conflict(f"a cart holds at most {MAX_LINES} lines", code="cart_full")
        session.add(
            CartItem(
                cart_id=cart_id,
                product_id=product.id,
                option_ids=options,
                quantity=data.quantity,
                created_at=utcnow(),
            )
        )
    await session.flush()


async def _own_item(session: AsyncSession, user: User, item_id: int) -> CartItem:
    _customer(user)
    cart_id = await repo.lock(session, user.id)
    found = None if cart_id is None else await repo.item(session, cart_id, item_id)
    if found is None:
        raise NotFound(f"your cart has no item {item_id}", code="cart_item_not_found")
    return found


async def set_quantity(session: AsyncSession, user: User, item_id: int, quantity: int) -> None:
    found = await _own_item(session, user, item_id)
    _max_quantity(session, quantity)
    found.quantity = quantity
    await session.flush()


async def remove_item(session: AsyncSession, user: User, item_id: int) -> None:
    await _own_item(session, user, item_id)
    await repo.delete_item(session, item_id)


async def clear(session: AsyncSession, user: User) -> None:
    _customer(user)
    cart_id = await repo.lock(session, user.id)
    if cart_id is not None:
        await repo.clear(session, cart_id)


def _problem(product: Row[Any] | None, groups: pricing.Groups, item: CartItem) -> str | None:
    """Why the line cannot be ordered now, or None."""
    if product is None:
        return "the product is no longer on the menu"
    if not product.is_available:
        return f'"{product.name}" is not available now'
    if not product.restaurant_is_active:
        return f"{product.restaurant_name} is not taking orders"
    if not product.is_accepting_orders:
        return f"{product.restaurant_name} has paused taking orders"
    try:
        pricing.choose(product.id, product.name, groups.get(product.id, ()), item.option_ids)
    except DomainError as exc:
        return exc.detail
    return None


def _line(
    item: CartItem, product: Row[Any], groups: pricing.Groups, warnings: list[str]
) -> CartLineRead:
    offered = {c.id: c for g in groups.get(item.product_id, ()) for c in g.choices}
    choices = [offered[i] for i in item.option_ids if i in offered]
    price = pricing.unit_price(product.price, choices)
    problem = _problem(product, groups, item)
    return CartLineRead(
        id=item.id,
        product_id=item.product_id,
        product_name=product.name,
        options=[
            CartOptionRead(id=c.id, group=c.group, name=c.name, price_delta=c.price_delta)
            for c in choices
        ],
        quantity=item.quantity,
        unit_price=price,
        line_total=line_total(price, item.quantity),
        is_available=problem is None,
        problem=problem,
        allergy_warnings=warnings,
    )


async def read(session: AsyncSession, user: User) -> CartRead:
    """The cart at current menu prices; each line says whether it can be ordered now and
    what in it matches the customer's allergies."""
    _customer(user)
    cart_id = await repo.cart_id_of(session, user.id)
    lines: Sequence[CartItem] = [] if cart_id is None else await repo.items(session, cart_id)
    if not lines:
        return CartRead(
            restaurant_id=None, items=[], total=Decimal(0), currency=None, can_checkout=False
        )
    by_id, groups = await _menu(session, {x.product_id for x in lines}, False)
    lines = [x for x in lines if x.product_id in by_id]  # a product deleted meanwhile
    if not lines:
        return CartRead(
            restaurant_id=None, items=[], total=Decimal(0), currency=None, can_checkout=False
        )
    contents = []
    for item in lines:
        product = by_id[item.product_id]
        offered = {c.id: c for g in groups.get(item.product_id, ()) for c in g.choices}
        options = [offered[i].snapshot() for i in item.option_ids if i in offered]
        contents.append(
            LineContents.of(product.name, product.ingredients, product.allergens, options)
        )
    warnings: list[list[str]] = [[] for _ in lines]
    for conflict in find_conflicts(user.allergies, contents):
        warnings[conflict.line - 1].append(conflict.describe())
    reads = [
        _line(item, by_id[item.product_id], groups, warnings[n]) for n, item in enumerate(lines)
    ]
    first = by_id[lines[0].product_id]
    return CartRead(
        restaurant_id=first.restaurant_id,
        items=reads,
        total=round_money(sum((r.line_total for r in reads), start=Decimal(0))),
        currency=first.currency,
        can_checkout=all(r.is_available for r in reads),
    )


async def checkout(session: AsyncSession, user: User, data: CheckoutIn) -> orders.PlacedOrder:
    """Place the cart's lines as an order, through the same placement (limits, verification,
    opening hours, pricing) as ``POST /orders``, and empty the cart in the same transaction.
    The cart's row lock and the delete of its lines make a second, simultaneous checkout of
    the same cart find it empty."""
    _customer(user)
    cart_id = await repo.lock(session, user.id)
    taken = [] if cart_id is None else await repo.take_items(session, cart_id)
    if not taken:
        raise Conflict("your cart is empty", code="cart_empty")
    order = OrderCreate(
        items=[
            OrderItemIn(product_id=row.product_id, quantity=row.quantity, options=row.option_ids)
            for row in taken
        ],
        fulfillment=data.fulfillment,
        delivery_address=data.delivery_address,
        note=data.note,
    )
    return await orders.place_order(session, user, order)
