"""Every query of the catalog package."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, Select, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commissary.core.ids import parse_id
from commissary.core.listing import (
    ORDER_OPS,
    TEXT_OPS,
    Extra,
    Filter,
    ListQuery,
    ListSpec,
    bounded_int,
    fetch_page,
    parse_amount,
    parse_bool,
    parse_datetime,
)
from commissary.models import (
    Category,
    KitchenMode,
    Option,
    OptionGroup,
    Order,
    Product,
    Restaurant,
    User,
    restaurant_owner,
)

MAX_POSITION = 1_000_000

RESTAURANT_LIST = ListSpec(
    filters={
        "name": Filter(Restaurant.name, ops=TEXT_OPS),
        "slug": Filter(Restaurant.slug, ops=TEXT_OPS),
        "is_active": Filter(Restaurant.is_active, parse_bool),
        "kitchen_mode": Filter(Restaurant.kitchen_mode, KitchenMode),
        "timezone": Filter(Restaurant.timezone),
        "created_at": Filter(Restaurant.created_at, parse_datetime, ORDER_OPS),
    },
    sortable={
        "id": Restaurant.id,
        "name": Restaurant.name,
        "slug": Restaurant.slug,
        "created_at": Restaurant.created_at,
    },
    default_sort=("name",),
    search=(Restaurant.name, Restaurant.description),
)

CATEGORY_LIST = ListSpec(
    filters={
        "name": Filter(Category.name, ops=TEXT_OPS),
        "position": Filter(Category.position, bounded_int(0, MAX_POSITION), ORDER_OPS),
    },
    sortable={"id": Category.id, "name": Category.name, "position": Category.position},
    default_sort=("position", "name"),
    search=(Category.name, Category.description),
)

PRODUCT_LIST = ListSpec(
    filters={
        "restaurant_id": Filter(Product.restaurant_id, parse_id),
        "category_id": Filter(Product.category_id, parse_id),
        "is_available": Filter(Product.is_available, parse_bool),
        "price": Filter(Product.price, parse_amount, ORDER_OPS),
        "name": Filter(Product.name, ops=TEXT_OPS),
        "origin": Filter(Product.origin, ops=TEXT_OPS),
        "currency": Filter(Product.currency, str.upper),
        "created_at": Filter(Product.created_at, parse_datetime, ORDER_OPS),
        # A few operators each: the whole list stays within MAX_FILTERS parameters.
        "rating": Filter(Product.rating, parse_amount, frozenset({"gte", "lte", "isnull"})),
        "ratings_count": Filter(
            Product.ratings_count, bounded_int(0, 2**31 - 1), frozenset({"gte", "lte"})
        ),
    },
    sortable={
        "id": Product.id,
        "name": Product.name,
        "price": Product.price,
        "created_at": Product.created_at,
        # Unrated products sort as 0, below every rated one, on every engine.
        "rating": func.coalesce(Product.rating, 0),
        "ratings_count": Product.ratings_count,
    },
    default_sort=("id",),
    search=(Product.name, Product.description, Product.origin),
    extra={
        "safe_for_me": Extra(
            {"type": "boolean"},
            "`true`: only what is safe for the signed-in customer's allergies (a product with "
            "options is shown when some choice of them is safe). Needs a bearer token; never "
            "cached.",
        ),
        "exclude_allergens": Extra(
            {"type": "array", "items": {"type": "string", "maxLength": 80}, "maxItems": 20},
            "Hide products whose ingredients or allergen tags match one of these terms "
            "(comma-separated, ignoring case), options checked as for `safe_for_me`.",
        ),
    },
)


# Restaurants


async def get_restaurant(session: AsyncSession, restaurant_id: int) -> Restaurant | None:
    """The restaurant, without its owners."""
    return await session.get(Restaurant, restaurant_id)


async def get_restaurant_with_owners(
    session: AsyncSession, restaurant_id: int
) -> Restaurant | None:
    stmt = (
        select(Restaurant)
        .where(Restaurant.id == restaurant_id)
        .options(selectinload(Restaurant.owners))
    )
    return await session.scalar(stmt)


async def list_restaurants(session: AsyncSession, query: ListQuery) -> tuple[list[Restaurant], int]:
    stmt = select(Restaurant).options(selectinload(Restaurant.owners))
    return await fetch_page(session, stmt, query, Restaurant.id)


async def slug_exists(session: AsyncSession, slug: str) -> bool:
    return bool(await session.scalar(select(exists().where(Restaurant.slug == slug))))


async def slugs_like(session: AsyncSession, base: str) -> set[str]:
    """``base`` and the slugs that extend it with a ``-suffix``."""
    stmt = select(Restaurant.slug).where(
        or_(Restaurant.slug == base, Restaurant.slug.startswith(f"{base}-", autoescape=True))
    )
    return set((await session.scalars(stmt)).all())


async def users_by_ids(session: AsyncSession, ids: Collection[int]) -> list[User]:
    if not ids:
        return []
    return list((await session.scalars(select(User).where(User.id.in_(ids)))).all())


async def is_owner(session: AsyncSession, user_id: int, restaurant_id: int) -> bool:
    stmt = select(
        exists().where(
            restaurant_owner.c.restaurant_id == restaurant_id,
            restaurant_owner.c.user_id == user_id,
        )
    )
    return bool(await session.scalar(stmt))


async def has_orders(session: AsyncSession, restaurant_id: int) -> bool:
    return bool(await session.scalar(select(exists().where(Order.restaurant_id == restaurant_id))))


async def delete_restaurant(session: AsyncSession, restaurant_id: int) -> None:
    # Products and ownerships go with it through ON DELETE CASCADE.
    await session.execute(delete(Restaurant).where(Restaurant.id == restaurant_id))


# Categories


async def get_category(session: AsyncSession, category_id: int) -> Category | None:
    return await session.get(Category, category_id)


async def category_named(session: AsyncSession, name: str) -> Category | None:
    return await session.scalar(select(Category).where(func.lower(Category.name) == name.lower()))


async def list_categories(session: AsyncSession, query: ListQuery) -> tuple[list[Category], int]:
    return await fetch_page(session, select(Category), query, Category.id)


async def delete_category(session: AsyncSession, category_id: int) -> None:
    await session.execute(delete(Category).where(Category.id == category_id))


# Products


# A product's answer shows its option groups and their options.
WITH_OPTIONS = selectinload(Product.option_groups).selectinload(OptionGroup.options)


async def get_product(session: AsyncSession, product_id: int) -> Product | None:
    return await session.get(Product, product_id, options=[WITH_OPTIONS])


async def products_by_ids(session: AsyncSession, ids: Collection[int]) -> list[Product]:
    """The products among ``ids`` that exist, in one query, ordered by id."""
    if not ids:
        return []
    stmt = select(Product).where(Product.id.in_(list(ids))).order_by(Product.id)
    return list((await session.scalars(stmt)).all())


async def list_products(session: AsyncSession, query: ListQuery) -> tuple[list[Product], int]:
    return await fetch_page(session, select(Product).options(WITH_OPTIONS), query, Product.id)


async def delete_product(session: AsyncSession, product_id: int) -> None:
    await session.execute(delete(Product).where(Product.id == product_id))


# Option groups and options of products

MAX_GROUPS_PER_PRODUCT = 20
MAX_OPTIONS_PER_GROUP = 40

OPTION_GROUP_LIST = ListSpec(
    filters={
        "name": Filter(OptionGroup.name, ops=TEXT_OPS),
        "min_choices": Filter(OptionGroup.min_choices, bounded_int(0, 20), ORDER_OPS),
        "max_choices": Filter(OptionGroup.max_choices, bounded_int(0, 20), ORDER_OPS),
        "position": Filter(OptionGroup.position, bounded_int(0, MAX_POSITION), ORDER_OPS),
    },
    sortable={"id": OptionGroup.id, "name": OptionGroup.name, "position": OptionGroup.position},
    default_sort=("position", "id"),
    search=(OptionGroup.name,),
)


async def list_option_groups(
    session: AsyncSession, product_id: int, query: ListQuery
) -> tuple[list[OptionGroup], int]:
    stmt = (
        select(OptionGroup)
        .where(OptionGroup.product_id == product_id)
        .options(selectinload(OptionGroup.options))
    )
    return await fetch_page(session, stmt, query, OptionGroup.id)


async def get_option_group(
    session: AsyncSession, product_id: int, group_id: int
) -> OptionGroup | None:
    stmt = (
        select(OptionGroup)
        .where(OptionGroup.id == group_id, OptionGroup.product_id == product_id)
        .options(selectinload(OptionGroup.options))
    )
    return await session.scalar(stmt)


async def count_option_groups(session: AsyncSession, product_id: int) -> int:
    stmt = select(func.count()).where(OptionGroup.product_id == product_id)
    return int(await session.scalar(stmt) or 0)


async def get_option(session: AsyncSession, product_id: int, option_id: int) -> Option | None:
    """The option if it belongs to one of the product's groups."""
    stmt = (
        select(Option)
        .join(OptionGroup, OptionGroup.id == Option.group_id)
        .where(Option.id == option_id, OptionGroup.product_id == product_id)
    )
    return await session.scalar(stmt)


async def delete_option_group(session: AsyncSession, group_id: int) -> None:
    await session.execute(delete(OptionGroup).where(OptionGroup.id == group_id))


async def delete_option(session: AsyncSession, option_id: int) -> None:
    await session.execute(delete(Option).where(Option.id == option_id))


def safe_menu_candidates(
    where: list[ColumnElement[bool]],
) -> Select[int, list[str], list[str], bool]:
    """The contents of the products a list's filters let through, and whether each has
    option groups (the safe-menu check reads those groups too)."""
    has_groups = exists().where(OptionGroup.product_id == Product.id).label("has_options")
    return select(Product.id, Product.ingredients, Product.allergens, has_groups).where(*where)


async def product_images(session: AsyncSession, restaurant_id: int) -> list[str]:
    """The stored image names of a restaurant's products."""
    stmt = select(Product.image).where(
        Product.restaurant_id == restaurant_id, Product.image.is_not(None)
    )
    return [name for name in (await session.scalars(stmt)).all() if name]
