"""Sending one delivery: a signed JSON POST, and what its answer means.

A 2xx answer delivers it. A network error, a time-out, a 5xx or a 429 is tried again after
the next pause of `WEBHOOK_RETRY_BACKOFF` (5 s, 30 s, 2 min, 10 min, 1 h), by a new job
enqueued in the same transaction that records the failure; once the pauses are used up, the
delivery has failed. Any other answer (a 4xx, or a redirect, which is never followed) fails
it at once. A receiver URL refused by the address check (see ``urls``) fails it without a
connection. Every try is counted on the delivery with its status code or error.

The delivery row is locked while it is sent, and each job names the attempt it makes: a
second job for the same attempt (a replay racing a retry, a job delivered twice) finds it
made and sends nothing. A crash between sending and committing sends it again with the same
`webhook-id`, on which receivers deduplicate (at least once, as Standard Webhooks say)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from dataclasses import dataclass

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from commissary import __version__
from commissary.config import Settings
from commissary.core import jobs
from commissary.core.db import utcnow
from commissary.models import DeliveryStatus, Webhook, WebhookDelivery
from commissary.webhooks import repository as repo
from commissary.webhooks import signing, urls

log = structlog.get_logger(__name__)

ERROR_SNIPPET = 200  # characters of a refusing receiver's answer kept in `last_error`


@dataclass(frozen=True)
class Outcome:
    code: int | None = None
    error: str | None = None
    retry: bool = False

    @property
    def delivered(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


def message_id(delivery_id: int) -> str:
    return f"msg_{delivery_id}"


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


async def _snippet(response: httpx.Response) -> str:
    """The start of the answer's body, read no further than needed."""
    read = b""
    async for chunk in response.aiter_bytes():
        read += chunk
        if len(read) >= ERROR_SNIPPET:
            break
    return read[:ERROR_SNIPPET].decode("utf-8", "replace").strip()


def _judge(response: httpx.Response, snippet: str) -> Outcome:
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(code)
    detail = f"HTTP {code}" + (f": {snippet}" if snippet else "")
    if 300 <= code < 400:
        where = response.headers.get("location", "")[:200]
        return Outcome(code, f"HTTP {code}: redirect to {where!r} not followed")
    return Outcome(code, detail, retry=code == 429 or code >= 500)


async def post(webhook: Webhook, delivery: WebhookDelivery, settings: Settings) -> Outcome:
    """POST the delivery to its webhook once, signed; never raises for the receiver's sake."""
    try:
        target = await urls.target(webhook.url, settings)
    except urls.UnresolvedHost as exc:
        return Outcome(error=f"url {exc}", retry=True)
    except urls.RefusedUrl as exc:
        return Outcome(error=f"refused: url {exc}")
    body = body_of(delivery)
    headers = {
        "content-type": "application/json",
        "user-agent": f"Commissary-Webhooks/{__version__}",
        **signing.headers(webhook.secret, message_id(delivery.id), int(time.time()), body),
    }
    if target.host_header:
        headers["host"] = target.host_header
    extensions = {"sni_hostname": target.server_name} if target.server_name else {}
    try:
        # httpx bounds each step; the whole exchange is bounded too (a trickling answer).
        async with (
            asyncio.timeout(settings.webhook_timeout * 2),
            httpx.AsyncClient(
                timeout=settings.webhook_timeout, follow_redirects=False, trust_env=False
            ) as client,
            client.stream(
                "POST", target.url, content=body, headers=headers, extensions=extensions
            ) as response,
        ):
            snippet = "" if response.is_success else await _snippet(response)
    except (httpx.HTTPError, OSError, TimeoutError) as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}".rstrip(": "), retry=True)
    except (httpx.InvalidURL, ValueError) as exc:  # nothing a later try would change
        return Outcome(error=f"{type(exc).__name__}: {exc}".rstrip(": "))
    return _judge(response, snippet)


def record(
    session: AsyncSession, delivery: WebhookDelivery, outcome: Outcome, settings: Settings
) -> None:
    """Count the try on the delivery; schedule the next one when it is worth it."""
    now = utcnow()
    delivery.attempts += 1
    delivery.last_response_code = outcome.code
    delivery.last_error = outcome.error[:500] if outcome.error else None
    delivery.next_attempt_at = None
    backoff = settings.webhook_retry_backoff
    if outcome.delivered:
        delivery.status, delivery.delivered_at = DeliveryStatus.SUCCEEDED, now
    elif outcome.retry and delivery.attempts <= len(backoff):
        delay = backoff[delivery.attempts - 1]
        delivery.next_attempt_at = now + dt.timedelta(seconds=delay)
        jobs.enqueue(
            session,
            "webhooks.deliver",
            delay=delay,
            delivery_id=delivery.id,
            attempt=delivery.attempts,
        )
    else:
        delivery.status = DeliveryStatus.FAILED


async def deliver(session: AsyncSession, delivery_id: int, attempt: int) -> None:
    """Make try number ``attempt`` + 1 of the delivery, unless it was made already."""
    settings = jobs.runtime_of(session).settings
    found = await repo.delivery_to_send(session, delivery_id)
    if found is None:
        return  # its webhook was deleted
    delivery, webhook = found
    if delivery.status != DeliveryStatus.PENDING or delivery.attempts != attempt:
        log.info("webhook_delivery_already_tried", delivery_id=delivery_id, attempt=attempt)
        return
    if not webhook.is_active:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        delivery.last_error = "the webhook is inactive"
        await session.flush()
        return
    outcome = await post(webhook, delivery, settings)
    record(session, delivery, outcome, settings)
    await session.flush()
    log.info(
        "webhook_delivery_tried",
        delivery_id=delivery_id,
        webhook_id=webhook.id,
        attempt=delivery.attempts,
        status=delivery.status.value,
        code=outcome.code,
        error=outcome.error,
    )
