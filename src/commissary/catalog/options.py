"""Drink options: a product's option groups (size, milk, extras) and their priced options,
managed by the menu's owner. Services flush, never commit; every write calls
``invalidate_menu``, since a product's answer shows its groups."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import repository as repo
from commissary.catalog import service
from commissary.catalog.schemas import (
    OptionCreate,
    OptionGroupCreate,
    OptionGroupUpdate,
    OptionUpdate,
)
from commissary.core.cache import invalidate_menu
from commissary.core.db import utcnow
from commissary.core.errors import Conflict, Forbidden, InvalidInput, NotFound, reject_nulls
from commissary.core.listing import ListQuery
from commissary.core.money import round_money
from commissary.models import Option, OptionGroup, Product, User
from commissary.ops import audit


def _option(data: OptionCreate) -> Option:
    now = utcnow()
    fields = data.model_dump(exclude={"price_delta"})
    return Option(
        **fields, price_delta=round_money(data.price_delta), created_at=now, updated_at=now
    )


async def _owned_product(session: AsyncSession, product_id: int, actor: User) -> Product:
    product = await service.get_product(session, product_id)
    if not await service.owns_restaurant(session, actor, product.restaurant_id):
        raise Forbidden(
            f"only an admin or an owner of restaurant {product.restaurant_id} may change "
            "its products",
            code="not_restaurant_owner",
        )
    return product


def _audit(session: AsyncSession, actor: User, action: str, entity: str, entity_id: int) -> None:
    invalidate_menu(session)
    audit.record(session, actor_id=actor.id, action=action, entity=entity, entity_id=entity_id)


async def list_groups(
    session: AsyncSession, product_id: int, query: ListQuery
) -> tuple[list[OptionGroup], int]:
    await service.get_product(session, product_id)
    return await repo.list_option_groups(session, product_id, query)


async def get_group(session: AsyncSession, product_id: int, group_id: int) -> OptionGroup:
    group = await repo.get_option_group(session, product_id, group_id)
    if group is None:
        raise NotFound(
            f"product {product_id} has no option group {group_id}", code="option_group_not_found"
        )
    return group


def _check_room(count: int, limit: int, what: str) -> None:
    if count > limit:
        raise Conflict(f"at most {limit} {what}", code="too_many_options")


async def create_group(
    session: AsyncSession, product_id: int, data: OptionGroupCreate, actor: User
) -> OptionGroup:
    """Add an option group (with its first options) to a product."""
    await _owned_product(session, product_id, actor)
    count = await repo.count_option_groups(session, product_id)
    _check_room(count + 1, repo.MAX_GROUPS_PER_PRODUCT, "option groups per product")
    _check_room(len(data.options), repo.MAX_OPTIONS_PER_GROUP, "options per group")
    now = utcnow()
    group = OptionGroup(
        **data.model_dump(exclude={"options"}),
        product_id=product_id,
        options=[_option(option) for option in data.options],
        created_at=now,
        updated_at=now,
    )
    session.add(group)
    await session.flush()
    _audit(session, actor, "option_group.create", "option_group", group.id)
    return group


async def update_group(
    session: AsyncSession, product_id: int, group_id: int, data: OptionGroupUpdate, actor: User
) -> OptionGroup:
    await _owned_product(session, product_id, actor)
    group = await get_group(session, product_id, group_id)
    changes = data.model_dump(exclude_unset=True)
    reject_nulls(changes)
    low = changes.get("min_choices", group.min_choices)
    high = changes.get("max_choices", group.max_choices)
    if low > high:
        raise InvalidInput(
            f"`min_choices` ({low}) must not exceed `max_choices` ({high})",
            code="option_choice_range",
        )
    for name, value in changes.items():
        setattr(group, name, value)
    group.updated_at = utcnow()
    await session.flush()
    _audit(session, actor, "option_group.update", "option_group", group.id)
    return group


async def delete_group(session: AsyncSession, product_id: int, group_id: int, actor: User) -> None:
    """Delete a group with its options; past order lines keep their snapshot of them."""
    await _owned_product(session, product_id, actor)
    await get_group(session, product_id, group_id)
    await repo.delete_option_group(session, group_id)
    _audit(session, actor, "option_group.delete", "option_group", group_id)


async def create_option(
    session: AsyncSession, product_id: int, group_id: int, data: OptionCreate, actor: User
) -> Option:
    await _owned_product(session, product_id, actor)
    group = await get_group(session, product_id, group_id)
    _check_room(len(group.options) + 1, repo.MAX_OPTIONS_PER_GROUP, "options per group")
    option = _option(data)
    option.group_id = group.id
    session.add(option)
    await session.flush()
    _audit(session, actor, "option.create", "option", option.id)
    return option


async def get_option(session: AsyncSession, product_id: int, option_id: int) -> Option:
    option = await repo.get_option(session, product_id, option_id)
    if option is None:
        raise NotFound(f"product {product_id} has no option {option_id}", code="option_not_found")
    return option


async def update_option(
    session: AsyncSession, product_id: int, option_id: int, data: OptionUpdate, actor: User
) -> Option:
    await _owned_product(session, product_id, actor)
    option = await get_option(session, product_id, option_id)
    changes = data.model_dump(exclude_unset=True)
    reject_nulls(changes)
    if "price_delta" in changes:
        changes["price_delta"] = round_money(changes["price_delta"])
    for name, value in changes.items():
        setattr(option, name, value)
    option.updated_at = utcnow()
    await session.flush()
    _audit(session, actor, "option.update", "option", option.id)
    return option


async def delete_option(
    session: AsyncSession, product_id: int, option_id: int, actor: User
) -> None:
    await _owned_product(session, product_id, actor)
    await get_option(session, product_id, option_id)
    await repo.delete_option(session, option_id)
    _audit(session, actor, "option.delete", "option", option_id)
