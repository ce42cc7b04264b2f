"""Menu use cases: restaurants and their owners, categories, products.
Services flush, never commit: the request boundary owns the transaction. Every write calls
``invalidate_menu``, so cached menu answers are dropped once it commits."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import hours, images
from commissary.catalog import repository as repo
from commissary.catalog.schemas import (
    CategoryCreate,
    CategoryUpdate,
    ProductCreate,
    ProductUpdate,
    RestaurantCreate,
    RestaurantRead,
    RestaurantReplace,
    RestaurantUpdate,
)
from commissary.config import Settings
from commissary.core.cache import invalidate_menu
from commissary.core.db import after_commit, utcnow
from commissary.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    field_error,
    reject_nulls,
)
from commissary.core.listing import ListQuery
from commissary.core.money import round_money
from commissary.models import Category, Product, Restaurant, Role, User
from commissary.ops import audit

SLUG_ROOM = 70  # leaves space for a "-<n>" suffix within the 80 characters of a slug


class SlugTaken(Conflict):
    code = "slug_taken"


class CategoryNameTaken(Conflict):
    code = "category_name_taken"


async def _flush(session: AsyncSession, on_conflict: DomainError) -> None:
    """Flush, turning a lost race on a unique column into the same 409 as its pre-check."""
    try:
        await session.flush()
    except IntegrityError:
        raise on_conflict from None


# Ownership and opening hours, also used by the orders package.


async def owns_restaurant(session: AsyncSession, user: User, restaurant_id: int) -> bool:
    """Whether ``user`` may manage the restaurant: an admin, or a restaurateur among its
    owners."""
    if user.role is Role.ADMIN:
        return True
    return user.role is Role.RESTAURATEUR and await repo.is_owner(session, user.id, restaurant_id)


async def _ensure_owns(session: AsyncSession, user: User, restaurant_id: int) -> None:
    if not await owns_restaurant(session, user, restaurant_id):
        raise Forbidden(
            f"only an admin or an owner of restaurant {restaurant_id} may change it",
            code="not_restaurant_owner",
        )


def is_open_now(restaurant: Restaurant) -> bool:
    """Whether the opening hours cover the current instant. ``is_active`` is not considered."""
    return hours.is_open(restaurant.opening_hours, restaurant.timezone, utcnow())


def to_read(restaurant: Restaurant) -> RestaurantRead:
    """The read model of a restaurant whose owners are loaded."""
    computed = {"owner_ids", "is_open_now"}
    columns = {n: getattr(restaurant, n) for n in RestaurantRead.model_fields if n not in computed}
    return RestaurantRead.model_validate(
        {
            **columns,
            "owner_ids": sorted(user.id for user in restaurant.owners),
            "is_open_now": is_open_now(restaurant),
        }
    )


# Restaurants


def slugify(name: str) -> str:
    """A URL slug from a display name: ASCII, lowercase, words joined by hyphens."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:SLUG_ROOM].rstrip("-") or "restaurant"


async def _derive_slug(session: AsyncSession, name: str) -> str:
    base = slugify(name)
    taken = await repo.slugs_like(session, base)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


async def _restaurateurs(session: AsyncSession, ids: list[int]) -> list[User]:
    users = {user.id: user for user in await repo.users_by_ids(session, ids)}
    for user_id in ids:
        user = users.get(user_id)
        if user is None or user.role is not Role.RESTAURATEUR:
            raise field_error(
                "owner_ids",
                f"user {user_id} is not an existing user with the role restaurateur",
                "invalid_owner",
            )
    return [users[user_id] for user_id in ids]


async def create_restaurant(
    session: AsyncSession, data: RestaurantCreate, actor: User
) -> Restaurant:
    """Create a restaurant with its owners; the slug is derived from the name when omitted."""
    fields = data.model_dump(exclude={"slug", "owner_ids"})
    if data.slug is None:
        slug = await _derive_slug(session, data.name)
    elif await repo.slug_exists(session, data.slug):
        raise SlugTaken(f"the slug '{data.slug}' is taken")
    else:
        slug = data.slug
    now = utcnow()
    owners = await _restaurateurs(session, data.owner_ids)
    restaurant = Restaurant(**fields, slug=slug, owners=owners, created_at=now, updated_at=now)
    session.add(restaurant)
    await _flush(session, SlugTaken(f"the slug '{slug}' is taken"))
    invalidate_menu(session)
    audit.record(
        session,
        actor_id=actor.id,
        action="restaurant.create",
        entity="restaurant",
        entity_id=restaurant.id,
        slug=slug,
        owner_ids=data.owner_ids,
    )
    return restaurant


async def get_restaurant(session: AsyncSession, restaurant_id: int) -> Restaurant:
    """The restaurant with its owners loaded, or a 404."""
    restaurant = await repo.get_restaurant_with_owners(session, restaurant_id)
    if restaurant is None:
        raise NotFound(f"restaurant {restaurant_id} not found", code="restaurant_not_found")
    return restaurant


async def list_restaurants(session: AsyncSession, query: ListQuery) -> tuple[list[Restaurant], int]:
    return await repo.list_restaurants(session, query)


async def _apply_restaurant(
    session: AsyncSession, restaurant: Restaurant, changes: dict[str, Any], actor: User
) -> Restaurant:
    owner_ids = changes.pop("owner_ids", None)
    if owner_ids is not None and set(owner_ids) != {u.id for u in restaurant.owners}:
        if actor.role is not Role.ADMIN:
            raise Forbidden("only an admin may change owner_ids", code="owner_change_forbidden")
        restaurant.owners = await _restaurateurs(session, owner_ids)
    slug = changes.get("slug", restaurant.slug)
    if slug != restaurant.slug and await repo.slug_exists(session, slug):
        raise SlugTaken(f"the slug '{slug}' is taken")
    for name, value in changes.items():
        setattr(restaurant, name, value)
    restaurant.updated_at = utcnow()
    await _flush(session, SlugTaken(f"the slug '{slug}' is taken"))
    fields = sorted(changes) + (["owner_ids"] if owner_ids is not None else [])
    invalidate_menu(session)
    audit.record(
        session,
        actor_id=actor.id,
        action="restaurant.update",
        entity="restaurant",
        entity_id=restaurant.id,
        fields=fields,
    )
    return restaurant


async def replace_restaurant(
    session: AsyncSession, restaurant_id: int, data: RestaurantReplace, actor: User
) -> Restaurant:
    """Replace every field; omitted ``owner_ids`` keep the current owners."""
    restaurant = await get_restaurant(session, restaurant_id)
    await _ensure_owns(session, actor, restaurant_id)
    return await _apply_restaurant(session, restaurant, data.model_dump(), actor)


async def update_restaurant(
    session: AsyncSession, restaurant_id: int, data: RestaurantUpdate, actor: User
) -> Restaurant:
    """Change the given fields; only an admin may change ``owner_ids``."""
    restaurant = await get_restaurant(session, restaurant_id)
    await _ensure_owns(session, actor, restaurant_id)
    changes = data.model_dump(exclude_unset=True)
    reject_nulls(changes)
    return await _apply_restaurant(session, restaurant, changes, actor)


async def delete_restaurant(
    session: AsyncSession, restaurant_id: int, actor: User, media_dir: Path
) -> None:
    """Delete a restaurant with its products (their image files in ``media_dir`` after the
    commit). One that has orders is kept: 409."""
    restaurant = await get_restaurant(session, restaurant_id)
    await _ensure_owns(session, actor, restaurant_id)
    has_orders = Conflict(
        f"restaurant {restaurant_id} has orders and cannot be deleted; "
        "set is_active=false to take it off the menu instead",
        code="restaurant_has_orders",
    )
    if await repo.has_orders(session, restaurant_id):
        raise has_orders
    pictures = await repo.product_images(session, restaurant_id)
    try:
        await repo.delete_restaurant(session, restaurant_id)
    except IntegrityError:  # an order arrived since the check
        raise has_orders from None
    invalidate_menu(session)
    _remove_after_commit(session, media_dir, pictures)
    audit.record(
        session,
        actor_id=actor.id,
        action="restaurant.delete",
        entity="restaurant",
        entity_id=restaurant_id,
        slug=restaurant.slug,
    )


# Categories


async def get_category(session: AsyncSession, category_id: int) -> Category:
    category = await repo.get_category(session, category_id)
    if category is None:
        raise NotFound(f"category {category_id} not found", code="category_not_found")
    return category


async def list_categories(session: AsyncSession, query: ListQuery) -> tuple[list[Category], int]:
    return await repo.list_categories(session, query)


async def _ensure_category_name_free(
    session: AsyncSession, name: str, category_id: int | None = None
) -> None:
    existing = await repo.category_named(session, name)
    if existing is not None and existing.id != category_id:
        raise CategoryNameTaken(f"a category named '{name}' already exists")


async def create_category(session: AsyncSession, data: CategoryCreate, actor: User) -> Category:
    """Create a category; names are unique regardless of case."""
    await _ensure_category_name_free(session, data.name)
    now = utcnow()
    category = Category(**data.model_dump(), created_at=now, updated_at=now)
    session.add(category)
    await _flush(session, CategoryNameTaken(f"a category named '{data.name}' already exists"))
    invalidate_menu(session)
    audit.record(
        session,
        actor_id=actor.id,
        action="category.create",
        entity="category",
        entity_id=category.id,
        name=category.name,
    )
    return category


async def update_category(
    session: AsyncSession,
    category_id: int,
    data: CategoryCreate | CategoryUpdate,
    actor: User,
) -> Category:
    """Replace (a ``CategoryCreate``) or change (a ``CategoryUpdate``) a category."""
    category = await get_category(session, category_id)
    changes = data.model_dump(exclude_unset=isinstance(data, CategoryUpdate))
    reject_nulls(changes)
    if "name" in changes:
        await _ensure_category_name_free(session, changes["name"], category.id)
    for name, value in changes.items():
        setattr(category, name, value)
    category.updated_at = utcnow()
    await _flush(session, CategoryNameTaken(f"a category named '{category.name}' already exists"))
    invalidate_menu(session)
    audit.record(
        session,
        actor_id=actor.id,
        action="category.update",
        entity="category",
        entity_id=category.id,
        fields=sorted(changes),
    )
    return category


async def delete_category(session: AsyncSession, category_id: int, actor: User) -> None:
    """Delete a category; its products stay, without a category."""
    await get_category(session, category_id)
    await repo.delete_category(session, category_id)
    invalidate_menu(session)
    audit.record(
        session,
        actor_id=actor.id,
        action="category.delete",
        entity="category",
        entity_id=category_id,
    )


# Products


async def get_product(session: AsyncSession, product_id: int) -> Product:
    product = await repo.get_product(session, product_id)
    if product is None:
        raise NotFound(f"product {product_id} not found", code="product_not_found")
    return product


async def list_products(session: AsyncSession, query: ListQuery) -> tuple[list[Product], int]:
    return await repo.list_products(session, query)


async def _check_restaurant(session: AsyncSession, actor: User, restaurant_id: int) -> None:
    if await repo.get_restaurant(session, restaurant_id) is None:
        raise field_error(
            "restaurant_id", f"restaurant {restaurant_id} does not exist", "unknown_restaurant"
        )
    await _ensure_owns(session, actor, restaurant_id)


async def _check_category(session: AsyncSession, category_id: int | None) -> None:
    if category_id is not None and await repo.get_category(session, category_id) is None:
        raise field_error(
            "category_id", f"category {category_id} does not exist", "unknown_category"
        )


async def create_product(session: AsyncSession, data: ProductCreate, actor: User) -> Product:
    """Add a meal to a restaurant's menu; restaurateurs only to restaurants they own."""
    await _check_restaurant(session, actor, data.restaurant_id)
    await _check_category(session, data.category_id)
    now = utcnow()
    fields = data.model_dump(exclude={"price"})
    product = Product(
        **fields, price=round_money(data.price), created_at=now, updated_at=now, option_groups=[]
    )
    session.add(product)
    await session.flush()
    invalidate_menu(session)
    audit.record(
        session,
        actor_id=actor.id,
        action="product.create",
        entity="product",
        entity_id=product.id,
        restaurant_id=product.restaurant_id,
    )
    return product


async def update_product(
    session: AsyncSession,
    product_id: int,
    data: ProductCreate | ProductUpdate,
    actor: User,
) -> Product:
    """Replace (a ``ProductCreate``) or change (a ``ProductUpdate``) a product. Moving it to
    another restaurant needs the right to manage both."""
    product = await get_product(session, product_id)
    await _ensure_owns(session, actor, product.restaurant_id)
    changes = data.model_dump(exclude_unset=isinstance(data, ProductUpdate))
    reject_nulls(changes, nullable=("category_id", "origin"))
    if changes.get("restaurant_id", product.restaurant_id) != product.restaurant_id:
        await _check_restaurant(session, actor, changes["restaurant_id"])
    if "category_id" in changes:
        await _check_category(session, changes["category_id"])
    if "price" in changes:
        changes["price"] = round_money(changes["price"])
    for name, value in changes.items():
        setattr(product, name, value)
    product.updated_at = utcnow()
    await session.flush()
    invalidate_menu(session)
    audit.record(
        session,
        actor_id=actor.id,
        action="product.update",
        entity="product",
        entity_id=product.id,
        fields=sorted(changes),
    )
    return product


async def delete_product(
    session: AsyncSession, product_id: int, actor: User, media_dir: Path
) -> None:
    """Delete a product; past order lines keep their snapshot of it. Its image file (in
    ``media_dir``) is deleted after the commit."""
    product = await get_product(session, product_id)
    await _ensure_owns(session, actor, product.restaurant_id)
    await repo.delete_product(session, product_id)
    invalidate_menu(session)
    if product.image:
        _remove_after_commit(session, media_dir, [product.image])
    audit.record(
        session,
        actor_id=actor.id,
        action="product.delete",
        entity="product",
        entity_id=product_id,
        restaurant_id=product.restaurant_id,
    )


# Product images


def _remove_after_commit(session: AsyncSession, media_dir: Path, names: list[str]) -> None:
    """Delete the files of images no longer referenced, once that is committed."""
    if not names:
        return

    async def remove() -> None:
        for name in names:
            await asyncio.to_thread(images.remove, media_dir, name)

    after_commit(session, remove)


async def set_product_image(
    session: AsyncSession, product_id: int, data: bytes, actor: User, settings: Settings
) -> Product:
    """Give a product a new image: decoded and re-encoded in a thread, stored under a new
    name; the file it replaces is deleted after the commit."""
    product = await get_product(session, product_id)
    await _ensure_owns(session, actor, product.restaurant_id)
    encoded = await asyncio.to_thread(images.reencode, data, settings.image_max_pixels)
    name = await asyncio.to_thread(images.store, settings.media_dir, encoded)
    old = product.image
    product.image = name
    product.updated_at = utcnow()
    await session.flush()
    invalidate_menu(session)
    _remove_after_commit(session, settings.media_dir, [old] if old else [])
    audit.record(
        session,
        actor_id=actor.id,
        action="product.image.set",
        entity="product",
        entity_id=product.id,
        image=name,
    )
    return product


async def delete_product_image(
    session: AsyncSession, product_id: int, actor: User, media_dir: Path
) -> None:
    """Take a product's image away; its file is deleted after the commit."""
    product = await get_product(session, product_id)
    await _ensure_owns(session, actor, product.restaurant_id)
    if product.image is None:
        raise NotFound(f"product {product_id} has no image", code="image_not_found")
    _remove_after_commit(session, media_dir, [product.image])
    product.image = None
    product.updated_at = utcnow()
    await session.flush()
    invalidate_menu(session)
    audit.record(
        session,
        actor_id=actor.id,
        action="product.image.delete",
        entity="product",
        entity_id=product.id,
    )
