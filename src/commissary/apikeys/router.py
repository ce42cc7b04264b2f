"""HTTP endpoints of API keys: a developer's own keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from commissary.apikeys import repository as repo
from commissary.apikeys import service
from commissary.apikeys.gate import usage_recorder
from commissary.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyDetail, ApiKeyRead
from commissary.apikeys.usage import UsageRecorder
from commissary.core.deps import RuntimeDep, SessionDep
from commissary.core.ids import IdPath
from commissary.core.listing import ListQuery, Page, list_query
from commissary.models import Role, User
from commissary.users.dependencies import require_role

router = APIRouter(prefix="/api-keys", tags=["api_keys"])

Developer = Annotated[User, Depends(require_role(Role.DEVELOPER))]
Recorder = Annotated[UsageRecorder, Depends(usage_recorder)]
NOT_DEVELOPER: dict[int | str, dict[str, Any]] = {
    403: {"description": "Only `developer` (and `admin`) members hold API keys."}
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses={
        **NOT_DEVELOPER,
        409: {"description": "Already `API_KEYS_PER_MEMBER` unrevoked keys."},
        422: {"description": "Invalid body, or a limit above its cap; `errors` names it."},
    },
)
async def create_key(
    body: ApiKeyCreate, user: Developer, session: SessionDep, runtime: RuntimeDep
) -> object:
    """Create a key with the given scopes. The answer's `secret` is the key: it is shown
    this once and only its hash is kept. Send it as `X-API-Key`."""
    key, secret = await service.create(session, user, body, runtime.settings)
    return ApiKeyCreated.model_validate(
        {**ApiKeyRead.model_validate(key).model_dump(), "secret": secret}
    )


@router.get("", response_model=Page[ApiKeyRead], responses=NOT_DEVELOPER)
async def list_keys(
    user: Developer,
    query: Annotated[ListQuery, Depends(list_query(repo.KEY_LIST))],
    session: SessionDep,
) -> object:
    """Your keys, revoked ones included (`revoked_at__isnull=true` for the live ones), never
    their secrets. Filters: `name`, `prefix`, `created_at`, `last_used_at`, `revoked_at`
    (with `__op` suffixes); `search` over the name; `sort` by `id`, `name`, `created_at`,
    `last_used_at`."""
    items, total = await service.list_keys(session, user, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@router.get("/{key_id}", response_model=ApiKeyDetail, responses=NOT_DEVELOPER)
async def read_key(
    key_id: IdPath, user: Developer, session: SessionDep, recorder: Recorder
) -> object:
    """One of your keys with its usage: requests counted today (UTC) and in all, and those
    refused today with a 429. Another member's key is a 404."""
    key = await service.get_owned(session, user, key_id)
    usage = await service.usage(session, key, recorder)
    return ApiKeyDetail.model_validate(
        {**ApiKeyRead.model_validate(key).model_dump(), "usage": usage}
    )


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_DEVELOPER, 204: {"description": "Revoked (or already revoked)."}},
)
async def revoke_key(key_id: IdPath, user: Developer, session: SessionDep) -> Response:
    """Revoke a key: from now on it is refused with a 401. It stays listed, with
    `revoked_at`."""
    await service.revoke(session, user, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
