"""HTTP endpoints of the menu: restaurants, categories and products (meals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile, status
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.apikeys.scopes import KeyScope, require_scope
from commissary.catalog import answers, images, safe_menu, service
from commissary.catalog import repository as repo
from commissary.catalog.options_router import router as options_router
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
from commissary.catalog.staff_router import router as staff_router
from commissary.core.cached_reads import CACHED_RESPONSE, JSON, Fresh, list_key, serve
from commissary.core.deps import RuntimeDep, SessionDep
from commissary.core.ids import MAX_ID, IdPath
from commissary.core.listing import ListQuery, Page, list_query
from commissary.models import Role, User
from commissary.users.dependencies import AdminUser, BearerToken, require_role

router = APIRouter(tags=["catalog"])
CATALOG_READ = require_scope(KeyScope.CATALOG_READ, public=True)


def _listing(
    request: Request,
    path: str,
    query: ListQuery,
    answer: Callable[[AsyncSession, ListQuery], Awaitable[Fresh]],
) -> Awaitable[Response]:
    """A public list through the menu cache. A hit is answered before routing; on a miss
    the endpoint has parsed the query (``list_query``), so only a query that parsed is
    cached, and the same query string parses the same."""

    async def build(session: AsyncSession) -> Fresh:
        return await answer(session, query)

    return serve(request, list_key(path, request.scope["query_string"]), build)


MENU_LISTS = frozenset({"/restaurants", "/categories", "/products"})


def cache_key(path: str, query_string: bytes) -> str | None:
    """The key the public read at ``path`` (below the API prefix) stores its answer under, as
    its endpoint computes it (the path itself, with the query for a list), so ``CachedReads``
    can answer it before routing. None for any other path, and for an id that the endpoint
    would spell differently (``01``)."""
    if path in MENU_LISTS:
        if path == "/products" and _is_personal(query_string):
            return None
        return list_key(path, query_string)
    head, _, tail = path.rpartition("/")
    canonical = tail.isascii() and tail.isdigit() and tail[:1] != "0" and len(tail) <= 19
    if head not in MENU_LISTS or not canonical or int(tail) > MAX_ID:
        return None
    return path


def _is_personal(query_string: bytes) -> bool:
    """Whether a product list asks for the caller's safe menu (``safe_for_me``, its name
    possibly percent-encoded), which the shared cache must never answer."""
    if b"safe_for_me" not in query_string and b"%" not in query_string:
        return False
    params = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return safe_menu.is_personal(dict(params))


MenuEditor = Annotated[User, Depends(require_role(Role.RESTAURATEUR))]
NO_CONTENT = status.HTTP_204_NO_CONTENT
PERSONAL = {"X-Cache": "miss"}


@router.post("/restaurants", status_code=status.HTTP_201_CREATED, response_model=RestaurantRead)
async def create_restaurant(
    body: RestaurantCreate, admin: AdminUser, session: SessionDep
) -> RestaurantRead:
    """Admin: open a restaurant; `owner_ids` name its restaurateurs."""
    return service.to_read(await service.create_restaurant(session, body, admin))


@router.get(
    "/restaurants",
    response_model=Page[RestaurantRead],
    responses=CACHED_RESPONSE,
    dependencies=[CATALOG_READ],
)
async def list_restaurants(
    request: Request, query: Annotated[ListQuery, Depends(list_query(repo.RESTAURANT_LIST))]
) -> Response:
    """Public. Filters: `name`, `slug`, `is_active`, `kitchen_mode`, `timezone`, `created_at`
    (with `__op` suffixes); `search` over name and description; `sort` by `name`, `slug`,
    `created_at`, `id`; `limit` (≤ 100), `offset`."""
    return await _listing(request, "/restaurants", query, answers.restaurants)


@router.get(
    "/restaurants/{restaurant_id}",
    response_model=RestaurantRead,
    responses=CACHED_RESPONSE,
    dependencies=[CATALOG_READ],
)
async def read_restaurant(restaurant_id: IdPath, request: Request) -> Response:
    """Public."""
    key = f"/restaurants/{restaurant_id}"
    return await serve(request, key, lambda session: answers.restaurant(session, restaurant_id))


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
    restaurant_id: IdPath, user: MenuEditor, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Admin or owner. Deletes its products too; a restaurant with orders is a 409
    (deactivate it with `is_active=false` instead)."""
    await service.delete_restaurant(session, restaurant_id, user, runtime.settings.media_dir)
    return Response(status_code=NO_CONTENT)


@router.post("/categories", status_code=status.HTTP_201_CREATED, response_model=CategoryRead)
async def create_category(body: CategoryCreate, user: MenuEditor, session: SessionDep) -> object:
    """Admin or restaurateur. Names are unique regardless of case."""
    return await service.create_category(session, body, user)


@router.get(
    "/categories",
    response_model=Page[CategoryRead],
    responses=CACHED_RESPONSE,
    dependencies=[CATALOG_READ],
)
async def list_categories(
    request: Request, query: Annotated[ListQuery, Depends(list_query(repo.CATEGORY_LIST))]
) -> Response:
    """Public, sorted by `position`, then `name`. Filters: `name`, `position`; `search`."""
    return await _listing(request, "/categories", query, answers.categories)


@router.get(
    "/categories/{category_id}",
    response_model=CategoryRead,
    responses=CACHED_RESPONSE,
    dependencies=[CATALOG_READ],
)
async def read_category(category_id: IdPath, request: Request) -> Response:
    """Public."""
    key = f"/categories/{category_id}"
    return await serve(request, key, lambda session: answers.category(session, category_id))


@router.put("/categories/{category_id}", response_model=CategoryRead)
async def replace_category(
    category_id: IdPath, body: CategoryCreate, user: MenuEditor, session: SessionDep
) -> object:
    """Admin or restaurateur: replace a category. Names are unique regardless of case."""
    return await service.update_category(session, category_id, body, user)


@router.patch("/categories/{category_id}", response_model=CategoryRead)
async def update_category(
    category_id: IdPath, body: CategoryUpdate, user: MenuEditor, session: SessionDep
) -> object:
    """Admin or restaurateur: change a category. Names are unique regardless of case."""
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


@router.get(
    "/products",
    response_model=Page[ProductRead],
    responses=CACHED_RESPONSE,
    dependencies=[CATALOG_READ],
)
async def list_products(
    request: Request,
    query: Annotated[ListQuery, Depends(list_query(repo.PRODUCT_LIST))],
    token: BearerToken,
) -> Response:
    """Public. Filters: `restaurant_id`, `category_id`, `is_available`, `price`, `name`,
    `origin`, `currency`, `created_at` (with `__op` suffixes, e.g. `price__lte=10`,
    `name__icontains=soup`), `rating__gte`/`__lte`/`__isnull`, `ratings_count__gte`/`__lte`;
    `search` over name, description and origin; `sort` by `price`, `name`, `created_at`,
    `rating` (unrated last with `-rating`), `ratings_count`, `id`; `limit` (≤ 100),
    `offset`. `exclude_allergens=a,b` hides
    what contains those terms; `safe_for_me=true` (signed in) hides what clashes with your
    allergies, and is answered for you alone, never from the shared cache."""
    params = request.query_params

    async def build(session: AsyncSession) -> Fresh:
        return await answers.products(session, query, params, token)

    if safe_menu.is_personal(params):
        async with request.app.state.runtime.sessionmaker() as session:
            fresh = await build(session)
        return Response(fresh.body, media_type=JSON, headers=PERSONAL)
    return await serve(request, list_key("/products", request.scope["query_string"]), build)


@router.get(
    "/products/{product_id}",
    response_model=ProductRead,
    responses=CACHED_RESPONSE,
    dependencies=[CATALOG_READ],
)
async def read_product(product_id: IdPath, request: Request) -> Response:
    """Public."""
    key = f"/products/{product_id}"
    return await serve(request, key, lambda session: answers.product(session, product_id))


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
async def delete_product(
    product_id: IdPath, user: MenuEditor, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Admin or owner. Its image file goes too."""
    await service.delete_product(session, product_id, user, runtime.settings.media_dir)
    return Response(status_code=NO_CONTENT)


IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"description": "Over `IMAGE_MAX_BYTES` bytes, or over `IMAGE_MAX_PIXELS` pixels."},
    415: {"description": "Not a complete JPEG, PNG or WebP image (judged by its bytes)."},
}
UPLOAD_CHUNK = 64 * 1024


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes; 413 as soon as there are more than ``limit``."""
    chunks, size = [], 0
    while chunk := await upload.read(UPLOAD_CHUNK):
        size += len(chunk)
        if size > limit:
            raise images.ImageTooLarge(f"the image is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.put("/products/{product_id}/image", response_model=ProductRead, responses=IMAGE_ERRORS)
async def put_product_image(
    product_id: IdPath,
    file: Annotated[UploadFile, File(description="A JPEG, PNG or WebP image.")],
    user: MenuEditor,
    session: SessionDep,
    runtime: RuntimeDep,
) -> object:
    """Admin or owner: set or replace the product's image (multipart field `file`). It is
    re-encoded without metadata and served at the product's `image_url`."""
    settings = runtime.settings
    data = await _read_limited(file, settings.image_max_bytes)
    return await service.set_product_image(session, product_id, data, user, settings)


@router.delete("/products/{product_id}/image", status_code=NO_CONTENT)
async def delete_product_image(
    product_id: IdPath, user: MenuEditor, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Admin or owner: remove the product's image."""
    await service.delete_product_image(session, product_id, user, runtime.settings.media_dir)
    return Response(status_code=NO_CONTENT)


router.include_router(options_router)
router.include_router(staff_router)
