"""HTTP endpoints of drink options: a product's option groups and their options."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from commissary.apikeys.scopes import KeyScope, require_scope
from commissary.catalog import options as service
from commissary.catalog import repository as repo
from commissary.catalog.schemas import (
    OptionCreate,
    OptionGroupCreate,
    OptionGroupRead,
    OptionGroupUpdate,
    OptionRead,
    OptionUpdate,
)
from commissary.core.deps import SessionDep
from commissary.core.ids import IdPath
from commissary.core.listing import ListQuery, Page, list_query
from commissary.models import Role, User
from commissary.users.dependencies import require_role

router = APIRouter(prefix="/products/{product_id}", tags=["catalog"])
CATALOG_READ = require_scope(KeyScope.CATALOG_READ, public=True)
MenuEditor = Annotated[User, Depends(require_role(Role.RESTAURATEUR))]
NO_CONTENT = status.HTTP_204_NO_CONTENT


@router.get("/option-groups", response_model=Page[OptionGroupRead], dependencies=[CATALOG_READ])
async def list_option_groups(
    product_id: IdPath,
    query: Annotated[ListQuery, Depends(list_query(repo.OPTION_GROUP_LIST))],
    session: SessionDep,
) -> object:
    """Public: the product's option groups with their options, by `position`. Filters:
    `name`, `min_choices`, `max_choices`, `position`; `search` over the name."""
    items, total = await service.list_groups(session, product_id, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@router.post("/option-groups", status_code=status.HTTP_201_CREATED, response_model=OptionGroupRead)
async def create_option_group(
    product_id: IdPath, body: OptionGroupCreate, user: MenuEditor, session: SessionDep
) -> object:
    """Admin or owner: add a group of choices (e.g. "Size", 1/1) with its first options."""
    return await service.create_group(session, product_id, body, user)


@router.get(
    "/option-groups/{group_id}", response_model=OptionGroupRead, dependencies=[CATALOG_READ]
)
async def read_option_group(product_id: IdPath, group_id: IdPath, session: SessionDep) -> object:
    """Public."""
    return await service.get_group(session, product_id, group_id)


@router.patch("/option-groups/{group_id}", response_model=OptionGroupRead)
async def update_option_group(
    product_id: IdPath,
    group_id: IdPath,
    body: OptionGroupUpdate,
    user: MenuEditor,
    session: SessionDep,
) -> object:
    """Admin or owner: rename, reorder, or change how many choices the group takes."""
    return await service.update_group(session, product_id, group_id, body, user)


@router.delete("/option-groups/{group_id}", status_code=NO_CONTENT)
async def delete_option_group(
    product_id: IdPath, group_id: IdPath, user: MenuEditor, session: SessionDep
) -> Response:
    """Admin or owner: delete the group and its options; past orders keep their snapshot."""
    await service.delete_group(session, product_id, group_id, user)
    return Response(status_code=NO_CONTENT)


@router.post(
    "/option-groups/{group_id}/options",
    status_code=status.HTTP_201_CREATED,
    response_model=OptionRead,
)
async def create_option(
    product_id: IdPath,
    group_id: IdPath,
    body: OptionCreate,
    user: MenuEditor,
    session: SessionDep,
) -> object:
    """Admin or owner: add an option with its exact `price_delta` (≥ 0), ingredients and
    allergen tags."""
    return await service.create_option(session, product_id, group_id, body, user)


@router.get("/options/{option_id}", response_model=OptionRead, dependencies=[CATALOG_READ])
async def read_option(product_id: IdPath, option_id: IdPath, session: SessionDep) -> object:
    """Public."""
    return await service.get_option(session, product_id, option_id)


@router.patch("/options/{option_id}", response_model=OptionRead)
async def update_option(
    product_id: IdPath,
    option_id: IdPath,
    body: OptionUpdate,
    user: MenuEditor,
    session: SessionDep,
) -> object:
    """Admin or owner: change an option (e.g. `is_available=false` when out of oat milk)."""
    return await service.update_option(session, product_id, option_id, body, user)


@router.delete("/options/{option_id}", status_code=NO_CONTENT)
async def delete_option(
    product_id: IdPath, option_id: IdPath, user: MenuEditor, session: SessionDep
) -> Response:
    """Admin or owner; past orders keep their snapshot of the option."""
    await service.delete_option(session, product_id, option_id, user)
    return Response(status_code=NO_CONTENT)
