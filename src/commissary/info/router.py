"""HTTP endpoint of the shop's public facts."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.apikeys.scopes import KeyScope, require_scope
from commissary.core.cached_reads import CACHED_RESPONSE, Fresh, serve
from commissary.core.db import utcnow
from commissary.info import service
from commissary.info.schemas import ShopInfo

router = APIRouter(tags=["info"])
CATALOG_READ = require_scope(KeyScope.CATALOG_READ, public=True)
CACHE_KEY = "/info"


@router.get(
    "/info", response_model=ShopInfo, responses=CACHED_RESPONSE, dependencies=[CATALOG_READ]
)
async def read_info(request: Request) -> Response:
    """Public: the brand (name, description, contacts) and each active location with its
    address, phone, time zone, weekly hours, whether it is open now and when that changes.
    Served from the menu cache until a restaurant changes or a location opens or closes."""
    settings = request.app.state.runtime.settings

    async def build(session: AsyncSession) -> Fresh:
        started = utcnow()
        info, changes_at = await service.shop_info(session, settings, started)
        body = info.__pydantic_serializer__.to_json(info, by_alias=True)
        if changes_at is None:
            return Fresh(body)
        return Fresh(body, (changes_at - utcnow()).total_seconds())

    return await serve(request, CACHE_KEY, build)
