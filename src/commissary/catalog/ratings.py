"""Product ratings: one score (1-10) and comment per customer and product.

The product keeps its average (to one decimal) and count. Each rating write takes the
product's row lock first, then recounts from the ratings themselves, so concurrent ratings of
one product queue up and the figures stay exact. (SQLite serializes writers anyway.)
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog.schemas import RatingIn, RatingRead
from commissary.core.cache import invalidate_menu
from commissary.core.db import utcnow
from commissary.core.errors import Forbidden, NotFound
from commissary.core.listing import (
    ORDER_OPS,
    Filter,
    ListQuery,
    ListSpec,
    bounded_int,
    fetch_page,
    parse_datetime,
)
from commissary.models import Product, Rating, Role, User
from commissary.ops import audit

TENTH = Decimal("0.1")

RATING_LIST = ListSpec(
    filters={
        "score": Filter(Rating.score, bounded_int(1, 10), ORDER_OPS),
        "created_at": Filter(Rating.created_at, parse_datetime, ORDER_OPS),
        "updated_at": Filter(Rating.updated_at, parse_datetime, ORDER_OPS),
    },
    sortable={
        "id": Rating.id,
        "score": Rating.score,
        "created_at": Rating.created_at,
        "updated_at": Rating.updated_at,
    },
    default_sort=("-updated_at", "-id"),
    search=(Rating.comment,),
)


def average(total: int, count: int) -> Decimal | None:
    """The mean score to one decimal, half up; None without ratings."""
    if count == 0:
        return None
    return (Decimal(total) / count).quantize(TENTH, rounding=ROUND_HALF_UP)


def _ensure_customer(user: User) -> None:
    if user.role is not Role.CUSTOMER:
        raise Forbidden("only customers rate products", code="customers_only")
    if not user.is_verified:
        raise Forbidden("verify your e-mail address before rating", code="email_not_verified")


async def _lock_product(session: AsyncSession, product_id: int) -> None:
    """Take the product's row lock (404 if it does not exist): rating writes queue here."""
    found = await session.scalar(
        select(Product.id).where(Product.id == product_id).with_for_update()
    )
    if found is None:
        raise NotFound(f"product {product_id} not found", code="product_not_found")


async def _recount(session: AsyncSession, product_id: int) -> None:
    count, total = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Rating.score), 0)).where(
                Rating.product_id == product_id
            )
        )
    ).one()
    await session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(rating=average(int(total), int(count)), ratings_count=int(count))
    )
    invalidate_menu(session)


async def _own(session: AsyncSession, user_id: int, product_id: int) -> Rating | None:
    return await session.scalar(
        select(Rating).where(Rating.product_id == product_id, Rating.user_id == user_id)
    )


async def rate(
    session: AsyncSession, user: User, product_id: int, data: RatingIn
) -> tuple[Rating, bool]:
    """Rate a product, or change one's rating of it; True when the rating is new."""
    _ensure_customer(user)
    await _lock_product(session, product_id)
    rating = await _own(session, user.id, product_id)
    now = utcnow()
    created = rating is None
    if rating is None:
        rating = Rating(product_id=product_id, user_id=user.id, created_at=now)
        session.add(rating)
    rating.score = data.score
    rating.comment = data.comment
    rating.updated_at = now
    await session.flush()
    await _recount(session, product_id)
    audit.record(
        session,
        actor_id=user.id,
        action="rating.create" if created else "rating.update",
        entity="product",
        entity_id=product_id,
        score=data.score,
    )
    return rating, created


async def unrate(session: AsyncSession, user: User, product_id: int) -> None:
    """Withdraw one's rating of a product."""
    await _lock_product(session, product_id)
    gone = await session.execute(
        delete(Rating).where(Rating.product_id == product_id, Rating.user_id == user.id)
    )
    if gone.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"you have not rated product {product_id}", code="rating_not_found")
    await _recount(session, product_id)
    audit.record(
        session, actor_id=user.id, action="rating.delete", entity="product", entity_id=product_id
    )


async def forget_user(session: AsyncSession, user_id: int) -> None:
    """Withdraw every rating of an account about to be deleted, so the products it rated
    keep exact figures (the database would drop the rows, not recount)."""
    product_ids = (
        await session.scalars(
            select(Rating.product_id).where(Rating.user_id == user_id).order_by(Rating.product_id)
        )
    ).all()
    for product_id in product_ids:  # in id order: concurrent deletions lock in one order
        await _lock_product(session, product_id)
        await session.execute(
            delete(Rating).where(Rating.product_id == product_id, Rating.user_id == user_id)
        )
        await _recount(session, product_id)


async def own(session: AsyncSession, user: User, product_id: int) -> Rating:
    rating = await _own(session, user.id, product_id)
    if rating is None:
        raise NotFound(f"you have not rated product {product_id}", code="rating_not_found")
    return rating


def first_name(full_name: str) -> str:
    return (full_name.split() or [""])[0]


def to_read(rating: Rating, author: str) -> RatingRead:
    return RatingRead.model_validate(
        {
            "id": rating.id,
            "product_id": rating.product_id,
            "score": rating.score,
            "comment": rating.comment,
            "author": first_name(author),
            "created_at": rating.created_at,
            "updated_at": rating.updated_at,
        }
    )


async def list_ratings(
    session: AsyncSession, product_id: int, query: ListQuery
) -> tuple[list[RatingRead], int]:
    """A product's ratings, each with its author's first name only."""
    if await session.scalar(select(Product.id).where(Product.id == product_id)) is None:
        raise NotFound(f"product {product_id} not found", code="product_not_found")
    stmt = select(Rating).where(Rating.product_id == product_id)
    items, total = await fetch_page(session, stmt, query, Rating.id.desc())
    names = await _names(session, {r.user_id for r in items})
    return [to_read(r, names.get(r.user_id, "")) for r in items], total


async def _names(session: AsyncSession, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows: list[Row[tuple[int, str]]] = list(
        await session.execute(select(User.id, User.full_name).where(User.id.in_(user_ids)))
    )
    return {row.id: row.full_name for row in rows}
