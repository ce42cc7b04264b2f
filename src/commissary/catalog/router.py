"""HTTP endpoints of the menu: restaurants, categories and products (meals)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from commissary.catalog import repository as repo
from commissary.catalog import service
from commissary.catalog.schemas import (
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    ProductCreate,
    ProductRead,
    ProductUpdate,
    RestaurantCreate,
    RestaurantRead,
    RestaurantReplace,
    RestaurantUpdate,
)
from commissary.core.deps import SessionDep
from commissary.core.ids import IdPath
from commissary.core.listing import ListQuery, Page, list_query
from commissary.models import Role, User
from commissary.users.dependencies import AdminUser, require_role

router = APIRouter(tags=["catalog"])

MenuEditor = Annotated[User, Depends(require_role(Role.RESTAURATEUR))]
NO_CONTENT = status.HTTP_204_NO_CONTENT


@router.post("/restaurants", status_code=status.HTTP_201_CREATED, response_model=RestaurantRead)
async def create_restaurant(
    body: RestaurantCreate, admin: AdminUser, session: SessionDep
) -> RestaurantRead:
    """Admin: open a restaurant; `owner_ids` name its restaurateurs."""
    return service.to_read(await service.create_restaurant(session, body, admin))


@router.get("/restaurants", response_model=Page[RestaurantRead])
async def list_restaurants(
    query: Annotated[ListQuery, Depends(list_query(repo.RESTAURANT_LIST))], session: SessionDep
) -> object:
    """Public. Filters: `name`, `slug`, `is_active`, `kitchen_mode`, `timezone`, `created_at`
    (with `__op` suffixes); `search` over name and description; `sort` by `name`, `slug`,
    `created_at`, `id`; `limit` (≤ 100), `offset`."""
    items, total = await service.list_restaurants(session, query)
    return {
        "items": [service.to_read(item) for item in items],
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
    }


@router.get("/restaurants/{restaurant_id}", response_model=RestaurantRead)
async def read_restaurant(restaurant_id: IdPath, session: SessionDep) -> RestaurantRead:
    return service.to_read(await service.get_restaurant(session, restaurant_id))


@router.put("/restaurants/{restaurant_id}", response_model=RestaurantRead)
async def replace_restaurant(
    restaurant_id: IdPath, body: RestaurantReplace, user: MenuEditor, session: SessionDep
) -> RestaurantRead:
    """Admin or owner. Omitted `owner_ids` stay as they are; only an admin changes them."""
    restaurant = await service.replace_restaurant(session, restaurant_id, body, user)
    return service.to_read(restaurant)


@router.patch("/restaurants/{restaurant_id}", response_model=RestaurantRead)
async def update_restaurant(
    restaurant_id: IdPath, body: RestaurantUpdate, user: MenuEditor, session: SessionDep
) -> RestaurantRead:
    """Admin or owner. Only an admin changes `owner_ids`."""
    restaurant = await service.update_restaurant(session, restaurant_id, body, user)
    return service.to_read(restaurant)


@router.delete("/restaurants/{restaurant_id}", status_code=NO_CONTENT)
async def delete_restaurant(
    restaurant_id: IdPath, user: MenuEditor, session: SessionDep
) -> Response:
    """Admin or owner. Deletes its products too; a restaurant with orders is a 409
    (deactivate it with `is_active=false` instead)."""
    await service.delete_restaurant(session, restaurant_id, user)
    return Response(status_code=NO_CONTENT)


@router.post("/categories", status_code=status.HTTP_201_CREATED, response_model=CategoryRead)
async def create_category(body: CategoryCreate, user: MenuEditor, session: SessionDep) -> object:
    """Admin or restaurateur. Names are unique regardless of case."""
    return await service.create_category(session, body, user)


@router.get("/categories", response_model=Page[CategoryRead])
async def list_categories(
    query: Annotated[ListQuery, Depends(list_query(repo.CATEGORY_LIST))], session: SessionDep
) -> object:
    """Public, sorted by `position`, then `name`. Filters: `name`, `position`; `search`."""
    items, total = await service.list_categories(session, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@router.get("/categories/{category_id}", response_model=CategoryRead)
async def read_category(category_id: IdPath, session: SessionDep) -> object:
    return await service.get_category(session, category_id)


@router.put("/categories/{category_id}", response_model=CategoryRead)
async def replace_category(
    category_id: IdPath, body: CategoryCreate, user: MenuEditor, session: SessionDep
) -> object:
    return await service.update_category(session, category_id, body, user)


@router.patch("/categories/{category_id}", response_model=CategoryRead)
async def update_category(
    category_id: IdPath, body: CategoryUpdate, user: MenuEditor, session: SessionDep
) -> object:
    return await service.update_category(session, category_id, body, user)


@router.delete("/categories/{category_id}", status_code=NO_CONTENT)
async def delete_category(category_id: IdPath, user: MenuEditor, session: SessionDep) -> Response:
    """Its products stay, without a category."""
    await service.delete_category(session, category_id, user)
    return Response(status_code=NO_CONTENT)


@router.post("/products", status_code=status.HTTP_201_CREATED, response_model=ProductRead)
async def create_product(body: ProductCreate, user: MenuEditor, session: SessionDep) -> object:
    """Admin, or a restaurateur owning `restaurant_id`. `price` is exact: send `"12.50"` (or
    `12.5`); it is answered as a string."""
    return await service.create_product(session, body, user)


@router.get("/products", response_model=Page[ProductRead])
async def list_products(
    query: Annotated[ListQuery, Depends(list_query(repo.PRODUCT_LIST))], session: SessionDep
) -> object:
    """Public. Filters: `restaurant_id`, `category_id`, `is_available`, `price`, `name`,
    `origin`, `currency`, `created_at` (with `__op` suffixes, e.g. `price__lte=10`,
    `name__icontains=soup`); `search` over name, description and origin; `sort` by `price`,
    `name`, `created_at`, `id`; `limit` (≤ 100), `offset`."""
    items, total = await service.list_products(session, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@router.get("/products/{product_id}", response_model=ProductRead)
async def read_product(product_id: IdPath, session: SessionDep) -> object:
    return await service.get_product(session, product_id)


@router.put("/products/{product_id}", response_model=ProductRead)
async def replace_product(
    product_id: IdPath, body: ProductCreate, user: MenuEditor, session: SessionDep
) -> object:
    """Admin or owner; moving it to another restaurant needs ownership of both."""
    return await service.update_product(session, product_id, body, user)


@router.patch("/products/{product_id}", response_model=ProductRead)
async def update_product(
    product_id: IdPath, body: ProductUpdate, user: MenuEditor, session: SessionDep
) -> object:
    """Admin or owner; moving it to another restaurant needs ownership of both."""
    return await service.update_product(session, product_id, body, user)


@router.delete("/products/{product_id}", status_code=NO_CONTENT)
async def delete_product(product_id: IdPath, user: MenuEditor, session: SessionDep) -> Response:
    await service.delete_product(session, product_id, user)
    return Response(status_code=NO_CONTENT)
