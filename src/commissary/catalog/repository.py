"""Every query of the catalog package."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commissary.core.ids import parse_id
from commissary.core.listing import (
    ORDER_OPS,
    TEXT_OPS,
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
    },
    sortable={
        "id": Product.id,
        "name": Product.name,
        "price": Product.price,
        "created_at": Product.created_at,
    },
    default_sort=("id",),
    search=(Product.name, Product.description, Product.origin),
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


async def get_product(session: AsyncSession, product_id: int) -> Product | None:
    return await session.get(Product, product_id)


async def products_by_ids(session: AsyncSession, ids: Collection[int]) -> list[Product]:
    """The products among ``ids`` that exist, in one query, ordered by id."""
    if not ids:
        return []
    stmt = select(Product).where(Product.id.in_(list(ids))).order_by(Product.id)
    return list((await session.scalars(stmt)).all())


async def list_products(session: AsyncSession, query: ListQuery) -> tuple[list[Product], int]:
    return await fetch_page(session, select(Product), query, Product.id)


async def delete_product(session: AsyncSession, product_id: int) -> None:
    await session.execute(delete(Product).where(Product.id == product_id))


async def product_images(session: AsyncSession, restaurant_id: int) -> list[str]:
    """The stored image names of a restaurant's products."""
    stmt = select(Product.image).where(
        Product.restaurant_id == restaurant_id, Product.image.is_not(None)
    )
    return [name for name in (await session.scalars(stmt)).all() if name]
