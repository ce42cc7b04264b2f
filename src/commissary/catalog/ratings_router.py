"""HTTP endpoints of product ratings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from commissary.apikeys.scopes import KeyScope, require_scope
from commissary.catalog import ratings
from commissary.catalog.schemas import RatingIn, RatingRead
from commissary.core.deps import SessionDep
from commissary.core.ids import IdPath
from commissary.core.listing import ListQuery, Page, list_query
from commissary.users.dependencies import CurrentUser

router = APIRouter(prefix="/products/{product_id}", tags=["ratings"])
CATALOG_READ = require_scope(KeyScope.CATALOG_READ, public=True)


@router.put(
    "/rating",
    response_model=RatingRead,
    responses={201: {"model": RatingRead, "description": "The product's first rating by you."}},
)
async def rate_product(
    product_id: IdPath, body: RatingIn, user: CurrentUser, session: SessionDep, response: Response
) -> RatingRead:
    """Verified customers: rate a product from 1 to 10, with an optional comment (plain
    text). Putting again replaces your rating (200); the first time answers 201. The
    product's `rating` and `ratings_count` follow at once."""
    rating, created = await ratings.rate(session, user, product_id, body)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return ratings.to_read(rating, user.full_name)


@router.get("/rating", response_model=RatingRead)
async def read_own_rating(product_id: IdPath, user: CurrentUser, session: SessionDep) -> RatingRead:
    """Your rating of the product (404 when you have not rated it)."""
    return ratings.to_read(await ratings.own(session, user, product_id), user.full_name)


@router.delete("/rating", status_code=status.HTTP_204_NO_CONTENT)
async def delete_own_rating(product_id: IdPath, user: CurrentUser, session: SessionDep) -> Response:
    """Withdraw your rating of the product."""
    await ratings.unrate(session, user, product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/ratings", response_model=Page[RatingRead], dependencies=[CATALOG_READ])
async def list_ratings(
    product_id: IdPath,
    query: Annotated[ListQuery, Depends(list_query(ratings.RATING_LIST))],
    session: SessionDep,
) -> object:
    """Public: the product's ratings, newest first, each with its author's first name.
    Filters: `score`, `created_at`, `updated_at` (with `__op` suffixes, e.g. `score__gte=8`);
    `search` in the comments; `sort` by `score`, `created_at`, `updated_at`, `id`."""
    items, total = await ratings.list_ratings(session, product_id, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}
