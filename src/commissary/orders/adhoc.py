"""Ad-hoc lines: products that are not on the menu, named and priced by restaurant staff for a
walk-in, and the restaurant such an order is placed in.

One name is one product: lines of an order whose names match (trimmed, case-insensitive, as
the sales report groups them) and whose prices match become one line (quantities add, the
first spelling stays); the same name at two prices is refused, also against a menu line of
the order. An order without ad-hoc lines never reaches the queries of this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.errors import Forbidden, InvalidInput
from commissary.core.money import line_total, money_text
from commissary.models import Role, User
from commissary.orders import repository as repo
from commissary.orders.pricing import PricedLine
from commissary.orders.schemas import AdHocItemIn, OrderItem, OrderItemIn
from commissary.users.auth_service import Member


def split(items: Iterable[OrderItem]) -> tuple[list[OrderItemIn], list[AdHocItemIn]]:
    """The menu lines and the ad-hoc lines of an order, each in the order given."""
    menu: list[OrderItemIn] = []
    ad_hoc: list[AdHocItemIn] = []
    for item in items:
        if isinstance(item, AdHocItemIn):
            ad_hoc.append(item)
        else:
            menu.append(item)
    return menu, ad_hoc


def name_key(name: str) -> str:
    """What makes two names one product (the sales report's grouping key)."""
    return name.strip().lower()


@dataclass(slots=True)
class _Merged:
    name: str
    price: Decimal
    quantity: int
    ingredients: list[str] = field(default_factory=list)
    allergens: list[str] = field(default_factory=list)


def _add_tags(into: list[str], tags: Iterable[str]) -> None:
    seen = {tag.casefold() for tag in into}
    into.extend(tag for tag in tags if tag.casefold() not in seen)


def _price_conflict(name: str, prices: Iterable[Decimal]) -> InvalidInput:
    shown = sorted(set(prices))
    return InvalidInput(
        f'"{name}" has more than one price in this order ('
        + ", ".join(money_text(p) for p in shown)
        + "): lines with one name are one product at one price",
        code="ad_hoc_price_conflict",
        extra={"product_name": name, "unit_prices": [money_text(p) for p in shown]},
    )


def priced_lines(
    items: Sequence[AdHocItemIn], menu_lines: Sequence[PricedLine], max_quantity: int
) -> list[PricedLine]:
    """The ad-hoc lines, merged by name and price, priced from the staff's unit prices. A
    name of a menu line of the order must come at that line's unit price."""
    menu_prices: dict[str, set[Decimal]] = {}
    for line in menu_lines:
        menu_prices.setdefault(name_key(line.product_name), set()).add(line.unit_price)
    merged: dict[str, _Merged] = {}
    for item in items:
        key = name_key(item.product_name)
        known = merged.get(key)
        if known is None:
            known = merged[key] = _Merged(item.product_name, item.unit_price, 0)
        elif known.price != item.unit_price:
            raise _price_conflict(known.name, (known.price, item.unit_price))
        if key in menu_prices and item.unit_price not in menu_prices[key]:
            raise _price_conflict(item.product_name, {*menu_prices[key], item.unit_price})
        known.quantity += item.quantity
        _add_tags(known.ingredients, item.ingredients)
        _add_tags(known.allergens, item.allergens)
    too_many = [m.name for m in merged.values() if m.quantity > max_quantity]
    if too_many:
        raise InvalidInput(
            f"at most {max_quantity} of one product per order",
            code="quantity_too_large",
            extra={"product_names": too_many},
        )
    return [
        PricedLine(
            product_id=None,
            product_name=m.name,
            unit_price=m.price,
            quantity=m.quantity,
            line_total=line_total(m.price, m.quantity),
            ingredients=m.ingredients,
            allergens=m.allergens,
            options=[],
        )
        for m in merged.values()
    ]


def refuse_customer(items: Iterable[OrderItem]) -> None:
    """Customers order from the menu only."""
    if any(isinstance(item, AdHocItemIn) for item in items):
        raise Forbidden(
            "only staff may order ad-hoc lines (`product_name`, `unit_price`)",
            code="staff_only_field",
        )


async def restaurant(session: AsyncSession, user: User | Member, restaurant_id: int | None) -> Any:
    """The restaurant of an order made only of ad-hoc lines, as a row shaped like a menu
    row's restaurant part (with ``currency`` and ``is_staff``): ``restaurant_id``, or the
    waiter's restaurant when they belong to exactly one."""
    if restaurant_id is None:
        if user.role is not Role.WAITER:
            raise InvalidInput(
                "an order of ad-hoc lines only needs `restaurant_id`", code="restaurant_required"
            )
        mine = await repo.staff_restaurant_ids(session, user.id)
        if not mine:
            raise Forbidden("you are not a waiter of any restaurant", code="not_restaurant_staff")
        if len(mine) > 1:
            raise InvalidInput(
                f"you serve in restaurants {list(mine)}: give `restaurant_id`",
                code="restaurant_required",
            )
        restaurant_id = mine[0]
    row = await repo.restaurant_row(session, restaurant_id, user.id)
    if row is None:
        raise InvalidInput(f"restaurant {restaurant_id} does not exist", code="unknown_restaurant")
    return row
