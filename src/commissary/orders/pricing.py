"""Drink options on order and cart lines: which choices a line may make, what it costs, and the
snapshot it keeps. A line with the same product and the same options as another is one line.

Money stays exact: a unit price is the product's price plus the deltas of its options, rounded
once by ``core.money``. Options are read only for the products that have option groups, in one
query, so an order without options costs no more than before.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.errors import Conflict, InvalidInput
from commissary.core.money import line_total, money_text, round_money
from commissary.models import Option, OptionGroup


class Item(Protocol):
    """What a line asks for (an order's item, a cart's line)."""

    @property
    def product_id(self) -> int: ...

    @property
    def quantity(self) -> int: ...

    @property
    def options(self) -> Sequence[int]: ...


@dataclass(slots=True)
class PricedLine:
    """A line priced for an order: the values of its ``order_line`` row. A plain object, as
    building an ORM ``OrderLine`` costs a placement more than pricing it."""

    product_id: int | None
    product_name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal
    ingredients: list[str]
    allergens: list[str]
    options: list[dict[str, Any]]

    def row(self) -> dict[str, Any]:
        """The values of the ``order_line`` row (not ``asdict``, which copies each list)."""
        return {name: getattr(self, name) for name in _LINE_COLUMNS}


_LINE_COLUMNS = tuple(f.name for f in fields(PricedLine))


@dataclass(frozen=True, slots=True)
class Choice:
    """An option as the menu offers it now."""

    id: int
    group_id: int
    group: str
    name: str
    price_delta: Decimal
    ingredients: Sequence[str]
    allergens: Sequence[str]
    is_available: bool

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "name": self.name,
            "price_delta": money_text(self.price_delta),
            "ingredients": list(self.ingredients),
            "allergens": list(self.allergens),
        }


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    name: str
    min_choices: int
    max_choices: int
    choices: tuple[Choice, ...]


# The option groups of each product that has any, in menu order.
Groups = Mapping[int, Sequence[Group]]


@dataclass(frozen=True, slots=True)
class Line:
    """A line once equal lines are merged: the product, its sorted option ids, how many."""

    product_id: int
    options: tuple[int, ...]
    quantity: int


OPTIONS_QUERY = (
    select(
        OptionGroup.product_id,
        OptionGroup.id.label("group_id"),
        OptionGroup.name.label("group_name"),
        OptionGroup.min_choices,
        OptionGroup.max_choices,
        Option.id,
        Option.name,
        Option.price_delta,
        Option.ingredients,
        Option.allergens,
        Option.is_available,
    )
    .outerjoin(Option, Option.group_id == OptionGroup.id)
    .where(OptionGroup.product_id.in_(bindparam("product_ids", expanding=True)))
    .order_by(OptionGroup.position, OptionGroup.id, Option.position, Option.id)
)


async def load_groups(session: AsyncSession, product_ids: Collection[int]) -> Groups:
    """The option groups (with their options) of ``product_ids``, in one query."""
    if not product_ids:
        return {}
    result = await session.execute(OPTIONS_QUERY, {"product_ids": list(product_ids)})
    return _groups_of(result.all())


def _groups_of(rows: Iterable[Any]) -> dict[int, list[Group]]:
    found: dict[int, dict[int, tuple[Any, list[Choice]]]] = {}
    for row in rows:
        _, choices = found.setdefault(row.product_id, {}).setdefault(row.group_id, (row, []))
        if row.id is not None:
            choices.append(
                Choice(
                    row.id,
                    row.group_id,
                    row.group_name,
                    row.name,
                    row.price_delta,
                    row.ingredients,
                    row.allergens,
                    row.is_available,
                )
            )
    return {
        product_id: [
            Group(head.group_id, head.group_name, head.min_choices, head.max_choices, tuple(c))
            for head, c in groups.values()
        ]
        for product_id, groups in found.items()
    }


async def groups_for(
    session: AsyncSession, items: Sequence[Item], rows: Sequence[Row[Any]]
) -> Groups:
    """The groups that placement must check: read only when a line chose options or one of
    the products has groups (``has_options`` of the menu rows)."""
    wanted = {row.id for row in rows if row.has_options}
    wanted |= {item.product_id for item in items if item.options}
    return await load_groups(session, wanted) if wanted else {}


def merge(items: Iterable[Item], max_quantity: int) -> list[Line]:
    """Lines with the same product and options become one, in the order first seen."""
    merged: dict[tuple[int, tuple[int, ...]], int] = {}
    for item in items:
        key = (item.product_id, tuple(sorted(item.options)))
        merged[key] = merged.get(key, 0) + item.quantity
    too_many = sorted({key[0] for key, quantity in merged.items() if quantity > max_quantity})
    if too_many:
        raise InvalidInput(
            f"at most {max_quantity} of one product per order",
            code="quantity_too_large",
            extra={"product_ids": too_many},
        )
    return [Line(p, options, quantity) for (p, options), quantity in merged.items()]


def choose(
    product_id: int, product_name: str, groups: Sequence[Group], option_ids: Sequence[int]
) -> tuple[Choice, ...]:
    """The options ``option_ids`` of a product, checked against its groups: each option is
    the product's and available, none twice, and each group gets between its ``min_choices``
    and ``max_choices``. Returned in menu order."""
    offered = {choice.id: choice for group in groups for choice in group.choices}
    if len(set(option_ids)) != len(option_ids):
        raise InvalidInput(
            f'an option is chosen twice for "{product_name}"',
            code="duplicate_option",
            extra={"product_id": product_id},
        )
    foreign = sorted(set(option_ids) - offered.keys())
    if foreign:
        raise InvalidInput(
            f'options {foreign} are not options of "{product_name}" (product {product_id})',
            code="unknown_option",
            extra={"product_id": product_id, "option_ids": foreign},
        )
    unavailable = sorted(i for i in option_ids if not offered[i].is_available)
    if unavailable:
        names = ", ".join(f'"{offered[i].name}"' for i in unavailable)
        raise Conflict(
            f'options of "{product_name}" not available now: {names}',
            code="option_unavailable",
            extra={"product_id": product_id, "option_ids": unavailable},
        )
    chosen = set(option_ids)
    for group in groups:
        count = sum(1 for choice in group.choices if choice.id in chosen)
        if not group.min_choices <= count <= group.max_choices:
            raise InvalidInput(
                f'"{product_name}": choose {_between(group)} of "{group.name}", not {count}',
                code="option_choice_count",
                extra={"product_id": product_id, "group_id": group.id},
            )
    return tuple(choice for group in groups for choice in group.choices if choice.id in chosen)


def _between(group: Group) -> str:
    if group.min_choices == group.max_choices:
        return str(group.min_choices)
    return f"{group.min_choices} to {group.max_choices}"


def unit_price(price: Decimal, choices: Iterable[Choice]) -> Decimal:
    """The product's price plus its options' deltas, exact."""
    return round_money(price + sum((c.price_delta for c in choices), start=Decimal(0)))


def priced_lines(
    items: Sequence[Item], rows: Sequence[Row[Any]], groups: Groups, max_quantity: int
) -> list[PricedLine]:
    """Order lines priced from the menu ``rows`` (by product id), equal lines merged, with
    the product's and the options' contents as they are now."""
    by_id = {row.id: row for row in rows}
    lines = []
    for line in merge(items, max_quantity):
        product = by_id[line.product_id]
        choices = choose(product.id, product.name, groups.get(product.id, ()), line.options)
        price = unit_price(product.price, choices)
        lines.append(
            PricedLine(
                product_id=product.id,
                product_name=product.name,
                unit_price=price,
                quantity=line.quantity,
                line_total=line_total(price, line.quantity),
                ingredients=list(product.ingredients),
                allergens=list(product.allergens),
                options=[choice.snapshot() for choice in choices],
            )
        )
    return lines
