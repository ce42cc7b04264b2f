"""Every query of the cart package."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.db import utcnow
from commissary.models import Cart, CartItem


async def cart_id_of(session: AsyncSession, customer_id: int) -> int | None:
    return await session.scalar(select(Cart.id).where(Cart.customer_id == customer_id))


async def lock(session: AsyncSession, customer_id: int) -> int | None:
    """The id of the customer's cart, under a row lock (``FOR UPDATE``; SQLite serializes
    writers), so adds and checkouts of one cart take turns."""
    stmt = select(Cart.id).where(Cart.customer_id == customer_id).with_for_update()
    return await session.scalar(stmt)


async def lock_or_create(session: AsyncSession, customer_id: int) -> int:
    """The customer's cart, created on first use, under its row lock."""
    found = await lock(session, customer_id)
    if found is not None:
        return found
    now = utcnow()
    try:
        async with session.begin_nested():
            await session.execute(
                insert(Cart).values(customer_id=customer_id, created_at=now, updated_at=now)
            )
    except IntegrityError:  # created meanwhile by a parallel request of the same customer
        pass
    created = await lock(session, customer_id)
    assert created is not None
    return created


async def items(session: AsyncSession, cart_id: int) -> Sequence[CartItem]:
    stmt = select(CartItem).where(CartItem.cart_id == cart_id).order_by(CartItem.id)
    return (await session.scalars(stmt)).all()


async def item(session: AsyncSession, cart_id: int, item_id: int) -> CartItem | None:
    stmt = select(CartItem).where(CartItem.id == item_id, CartItem.cart_id == cart_id)
    return await session.scalar(stmt)


async def delete_item(session: AsyncSession, item_id: int) -> None:
    await session.execute(delete(CartItem).where(CartItem.id == item_id))


async def clear(session: AsyncSession, cart_id: int) -> None:
    await session.execute(delete(CartItem).where(CartItem.cart_id == cart_id))


async def take_items(session: AsyncSession, cart_id: int) -> Sequence[Row[Any]]:
    """Remove every line of the cart and return them, oldest first. Of two transactions that
    take the same lines, the second finds none (its delete waits for the first one's)."""
    stmt = (
        delete(CartItem)
        .where(CartItem.cart_id == cart_id)
        .returning(CartItem.id, CartItem.product_id, CartItem.option_ids, CartItem.quantity)
    )
    rows: list[Any] = list((await session.execute(stmt)).all())
    return sorted(rows, key=lambda row: row.id)
