"""The public menu answers as JSON bytes, for the answer cache (``core.cache``).

Each builder reads in the session it is given and serialises through the endpoint's response
model exactly as FastAPI would (Pydantic's JSON bytes), so a cached answer is
byte-for-byte the answer the endpoint gave uncached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import safe_menu, service
from commissary.catalog.schemas import CategoryRead, ProductRead, RestaurantRead
from commissary.core.cached_reads import Fresh
from commissary.core.db import utcnow
from commissary.core.listing import ListQuery, Page
from commissary.models import Restaurant


async def product(session: AsyncSession, product_id: int) -> Fresh:
    found = await service.get_product(session, product_id)
    return Fresh(_json(ProductRead.model_validate(found)))


async def products(
    session: AsyncSession,
    query: ListQuery,
    params: Mapping[str, str] | None = None,
    token: str | None = None,
) -> Fresh:
    """The product list; ``params`` may ask for a safe menu (``catalog.safe_menu``)."""
    if params:
        avoid = await safe_menu.avoided_terms(session, params, token)
        query = await safe_menu.without_unsafe(session, query, avoid)
    items, total = await service.list_products(session, query)
    return Fresh(_page(ProductRead, [ProductRead.model_validate(i) for i in items], total, query))


async def category(session: AsyncSession, category_id: int) -> Fresh:
    found = await service.get_category(session, category_id)
    return Fresh(_json(CategoryRead.model_validate(found)))


async def categories(session: AsyncSession, query: ListQuery) -> Fresh:
    items, total = await service.list_categories(session, query)
    reads = [CategoryRead.model_validate(item) for item in items]
    return Fresh(_page(CategoryRead, reads, total, query))


async def restaurant(session: AsyncSession, restaurant_id: int) -> Fresh:
    found = await service.get_restaurant(session, restaurant_id)
    started = utcnow()
    body = _json(service.to_read(found))
    return Fresh(body, _while_open_now_holds([found], started))


async def restaurants(session: AsyncSession, query: ListQuery) -> Fresh:
    items, total = await service.list_restaurants(session, query)
    started = utcnow()
    body = _page(RestaurantRead, [service.to_read(item) for item in items], total, query)
    return Fresh(body, _while_open_now_holds(items, started))


def _page(read: type[BaseModel], items: list[Any], total: int, query: ListQuery) -> bytes:
    """A list answer: ``Page[read]``, so it serialises exactly as the endpoint's model."""
    page = Page[read](items=items, total=total, limit=query.limit, offset=query.offset)  # type: ignore[valid-type]
    return _json(page)


def _json(model: BaseModel) -> bytes:
    """What FastAPI sends for a response model: Pydantic's JSON bytes, by alias."""
    return model.__pydantic_serializer__.to_json(model, by_alias=True)


def _while_open_now_holds(restaurants: Sequence[Restaurant], started: dt.datetime) -> float | None:
    """How long ``is_open_now``, computed at ``started`` or later, stays right: until the next
    minute. Opening hours are whole minutes of local time, and every current UTC offset and
    daylight-saving switch is too, so the answer can only change on a UTC minute boundary.
    None (no limit) when every restaurant is always open."""
    if all(not r.opening_hours for r in restaurants):
        return None
    boundary = started.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return (boundary - utcnow()).total_seconds()
