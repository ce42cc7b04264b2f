"""``Idempotency-Key`` on write endpoints: a client that retries a request (a lost answer, a
timeout on a waiter's tablet) with the same key gets the first answer again instead of a
second order.

Per member and key, one row of ``idempotency_key``:

1. The key is *claimed* first, in its own short committed statement (``INSERT … ON
   CONFLICT DO NOTHING``), so a concurrent retry sees the claim at once and is answered
   ``409 idempotency_key_in_progress`` instead of waiting on a lock.
2. The work runs; its answer (status, body, ``Location``) is written to the key in the
   same transaction as the work, so a committed order always has its stored answer.
3. If the work fails, its transaction is rolled back and the claim released (deleted):
   the client may retry with the same key. Only 2xx answers are stored and replayed.

A retry with the same key and the same request (method, path and canonical body) within
``IDEMPOTENCY_KEY_TTL`` replays the stored answer with ``Idempotent-Replayed: true``; the
same key with another request is ``422 idempotency_key_reused``. A claim whose request
never finished (a crashed process) may be taken over after ``IDEMPOTENCY_LEASE``
seconds. Expired keys are deleted in batches by the periodic ``idempotency.purge`` job.

A request without the header costs nothing: :func:`respond` runs the work as is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.db import commit, rollback, utcnow
from commissary.core.errors import Conflict, DomainError, InvalidInput
from commissary.models.idempotency import IdempotencyKey

log = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
PURGE_JOB = "idempotency.purge"
PURGE_BATCH = 1000
IN_PROGRESS, DONE = "in_progress", "done"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")

# The OpenAPI description of the header and of the answers it adds, for a route's
# decorator: ``@router.post(..., openapi_extra=OPENAPI_EXTRA, responses=RESPONSES)``.
OPENAPI_EXTRA: dict[str, Any] = {
    "parameters": [
        {
            "name": HEADER,
            "in": "header",
            "required": False,
            "description": (
                "1-255 visible ASCII characters, unique per request you mean to make once. A "
                "retry with the same key and body within 24 h replays the first successful "
                f"answer (status, body, `Location`) with `{REPLAYED_HEADER}: true`."
            ),
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
        }
    ]
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": f"A query parameter is refused, the body is not JSON, or {HEADER} "
        "is not 1-255 visible ASCII characters (`invalid_idempotency_key`)."
    },
    409: {
        "description": "The request conflicts with the current state, or a request with "
        "the same `Idempotency-Key` is still running (`idempotency_key_in_progress`)."
    },
    422: {
        "description": "The body or a parameter is invalid (`errors` names each field), or "
        "the `Idempotency-Key` was used with another request (`idempotency_key_reused`)."
    },
}


class InvalidKey(DomainError):
    status, code = 400, "invalid_idempotency_key"


class KeyInProgress(Conflict):
    code = "idempotency_key_in_progress"


class KeyReused(InvalidInput):
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Answer:
    """A successful answer of the work: what :func:`respond` sends and stores."""

    status: int
    body: BaseModel
    location: str | None = None


@dataclass(frozen=True)
class Claim:
    id: int
    claimed_at: dt.datetime


def key_of(request: Request) -> str | None:
    """The request's key; ``None`` without the header. A malformed key is a 400."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _VALID_KEY.fullmatch(key):
        detail = f"{HEADER} must be 1-255 visible ASCII characters (no spaces)"
        raise InvalidKey(
            detail, extra={"errors": [{"in": "header", "field": HEADER, "message": detail}]}
        )
    return key


def fingerprint(request: Request, body: BaseModel | None) -> str:
    """SHA-256 of the method, the path and the validated body in canonical JSON (sorted keys,
    no spaces), so the same order written with other spacing or key order is the same
    request."""
    data = None if body is None else body.model_dump(mode="json")
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = f"{request.method} {request.url.path}\n{canonical}"
    return hashlib.sha256(text.encode()).hexdigest()


async def respond(
    session: AsyncSession,
    request: Request,
    response: Response,
    member_id: int,
    body: BaseModel | None,
    work: Callable[[], Awaitable[Answer]],
) -> BaseModel | Response:
    """Run ``work`` once per key: the route's answer (with ``Location`` set on
    ``response``) without the header; with it, the stored or fresh answer as a
    ``Response``. ``session`` is the request's unit of work, in a real transaction."""
    key = key_of(request)
    if key is None:
        answer = await work()
        if answer.location is not None:
            response.headers["Location"] = answer.location
        return answer.body
    print_ = fingerprint(request, body)
    claimed = await _claim(session, member_id, key, print_)
    if isinstance(claimed, Response):
        return claimed
    try:
        answer = await work()
    except BaseException as exc:
        await _release(session, claimed, exc)
        raise
    content = answer.body.model_dump_json()
    stored = await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claimed.id, IdempotencyKey.created_at == claimed.claimed_at)
        .values(
            state=DONE,
            response_status=answer.status,
            response_body=content,
            response_location=answer.location,
        )
        .returning(IdempotencyKey.id)
    )
    if stored.first() is None:  # taken over after the lease: the other request decides
        raise KeyInProgress(f"a request with this {HEADER} is still in progress")
    return _response(answer.status, content, answer.location, replayed=False)


def _response(status: int, content: str, location: str | None, *, replayed: bool) -> Response:
    headers = {"Location": location} if location is not None else {}
    if replayed:
        headers[REPLAYED_HEADER] = "true"
    return Response(content, status_code=status, headers=headers, media_type="application/json")


async def _claim(session: AsyncSession, member_id: int, key: str, print_: str) -> Claim | Response:
    """Claim ``key`` in its own committed statement, or answer from the existing claim."""
    settings = jobs.runtime_of(session).settings
    now = utcnow()
    expires = now + dt.timedelta(seconds=settings.idempotency_key_ttl)
    values = {
        "user_id": member_id,
        "key": key,
        "fingerprint": print_,
        "state": IN_PROGRESS,
        "created_at": now,
        "expires_at": expires,
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    row = None
    # The claim that stood in the way may be released (its work failed) before we read it:
    # then the key is free again, and the insert is tried once more.
    for _ in range(3):
        inserted = await session.execute(
            insert(IdempotencyKey)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
            .returning(IdempotencyKey.id)
        )
        claim_id = inserted.scalar()
        if claim_id is not None:
            await commit(session)
            return Claim(claim_id, now)
        row = await session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.user_id == member_id, IdempotencyKey.key == key
            )
        )
        if row is not None:
            break
    if row is None:
        await rollback(session)
        raise KeyInProgress(f"a request with this {HEADER} is still in progress; retry in a moment")
    session.expunge(row)
    stale = now - dt.timedelta(seconds=settings.idempotency_lease)
    if row.expires_at > now:
        if row.fingerprint != print_:
            await rollback(session)
            raise KeyReused(
                f"this {HEADER} was used with another request; use a new key for a new request"
            )
        if row.state == DONE:
            await rollback(session)
            assert row.response_status is not None and row.response_body is not None
            return _response(
                row.response_status, row.response_body, row.response_location, replayed=True
            )
        if row.created_at > stale:
            await rollback(session)
            raise KeyInProgress(
                f"a request with this {HEADER} is still in progress; retry in a moment"
            )
    # Expired, or claimed by a request that never finished: take it over, unless another
    # retry just did.
    taken = await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == row.id, IdempotencyKey.created_at == row.created_at)
        .values(
            fingerprint=print_,
            state=IN_PROGRESS,
            response_status=None,
            response_body=None,
            response_location=None,
            created_at=now,
            expires_at=expires,
        )
        .returning(IdempotencyKey.id)
    )
    if taken.first() is None:
        await rollback(session)
        raise KeyInProgress(f"a request with this {HEADER} is still in progress; retry in a moment")
    await commit(session)
    log.info("idempotency_key_taken_over", key_id=row.id, previous_state=row.state)
    return Claim(row.id, now)


async def _release(session: AsyncSession, claim: Claim, error: BaseException) -> None:
    """The work failed: end its transaction as the unit of work would (rolled back, or
    committed for an error that keeps its changes), then delete the claim so the client
    may retry with the same key. A failure here leaves the claim to its lease."""
    try:
        if isinstance(error, DomainError) and error.keep_changes:
            await commit(session)
        else:
            await rollback(session)
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == claim.id, IdempotencyKey.created_at == claim.claimed_at
            )
        )
        await commit(session)
    except Exception:
        log.exception("idempotency_key_release_failed", key_id=claim.id)
        await rollback(session)


@jobs.job(PURGE_JOB)
async def purge(session: AsyncSession) -> None:
    """Delete one batch of expired keys and ask for another run while more remain, so each
    transaction stays small. An expired key is forgotten anyway (it may be claimed anew)."""
    now = utcnow()
    ids = list(
        (
            await session.scalars(
                select(IdempotencyKey.id)
                .where(IdempotencyKey.expires_at <= now)
                .order_by(IdempotencyKey.expires_at)
                .limit(PURGE_BATCH)
            )
        ).all()
    )
    if not ids:
        return
    await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.id.in_(ids), IdempotencyKey.expires_at <= now)
    )
    log.info("idempotency_keys_purged", count=len(ids))
    if len(ids) == PURGE_BATCH:
        jobs.enqueue(session, PURGE_JOB)
