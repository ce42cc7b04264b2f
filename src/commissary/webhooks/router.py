"""HTTP endpoints of the webhooks: a developer's receivers and their delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from commissary.core.deps import SessionDep
from commissary.core.ids import IdPath
from commissary.core.listing import ListQuery, Page, list_query
from commissary.webhooks import repository as repo
from commissary.webhooks import service
from commissary.webhooks.dependencies import Integrator
from commissary.webhooks.schemas import (
    WebhookCreate,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

URL_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "The body is invalid, or the `url` is refused (not https, or its host "
        "resolves to a private, loopback, link-local or reserved address); `errors` names "
        "the field."
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookWithSecret,
    responses={**URL_REFUSED, 409: {"description": "Too many webhooks already (20)."}},
)
async def create_webhook(body: WebhookCreate, user: Integrator, session: SessionDep) -> object:
    """Subscribe a URL to order event types. The answer holds the signing `secret`, shown
    this once."""
    return await service.create(session, user, body)


@router.get("", response_model=Page[WebhookRead])
async def list_webhooks(
    user: Integrator,
    query: Annotated[ListQuery, Depends(list_query(repo.WEBHOOK_LIST))],
    session: SessionDep,
) -> object:
    """The caller's webhooks (without their secrets)."""
    items, total = await service.list_owned(session, user, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@router.get("/{webhook_id}", response_model=WebhookRead)
async def read_webhook(webhook_id: IdPath, user: Integrator, session: SessionDep) -> object:
    """One of the caller's webhooks (another member's is a 404)."""
    return await service.get_owned(session, user, webhook_id)


@router.patch("/{webhook_id}", response_model=WebhookRead, responses=URL_REFUSED)
async def update_webhook(
    webhook_id: IdPath, body: WebhookUpdate, user: Integrator, session: SessionDep
) -> object:
    """Change the URL (checked again), the event types, or pause it (`is_active`)."""
    return await service.update(session, user, webhook_id, body)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookWithSecret)
async def rotate_webhook_secret(
    webhook_id: IdPath, user: Integrator, session: SessionDep
) -> object:
    """A new signing secret, shown this once; the old one signs nothing more."""
    return await service.rotate_secret(session, user, webhook_id)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: IdPath, user: Integrator, session: SessionDep) -> Response:
    """Delete the webhook and its delivery log."""
    await service.delete(session, user, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=Page[WebhookDeliveryRead])
async def list_deliveries(
    webhook_id: IdPath,
    user: Integrator,
    query: Annotated[ListQuery, Depends(list_query(repo.DELIVERY_LIST))],
    session: SessionDep,
) -> object:
    """The webhook's delivery log, newest first: each event sent (or to send), its status
    (`pending`, `succeeded`, `failed`), tries and the receiver's last answer."""
    items, total = await service.list_deliveries(session, user, webhook_id, query)
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookDeliveryRead,
    responses={409: {"description": "The webhook is inactive."}},
)
async def replay_delivery(
    webhook_id: IdPath, delivery_id: IdPath, user: Integrator, session: SessionDep
) -> object:
    """Send a delivery again now (same `webhook-id`), whatever became of it; the answer is
    the delivery, `pending` until the job has tried it."""
    return await service.replay(session, user, webhook_id, delivery_id)
