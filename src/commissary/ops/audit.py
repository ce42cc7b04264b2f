"""The audit trail: every write action, recorded in the transaction that performs it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.db import utcnow
from commissary.core.ids import parse_id
from commissary.core.listing import (
    EXACT_OPS,
    ORDER_OPS,
    TEXT_OPS,
    Filter,
    ListQuery,
    ListSpec,
    fetch_page,
    parse_datetime,
)
from commissary.models import AuditLog

AUDIT_LOG_LIST = ListSpec(
    filters={
        "actor_id": Filter(AuditLog.actor_id, parse_id, EXACT_OPS),
        "action": Filter(AuditLog.action, ops=TEXT_OPS),
        "entity": Filter(AuditLog.entity, ops=TEXT_OPS),
        "entity_id": Filter(AuditLog.entity_id, ops=EXACT_OPS),
        "at": Filter(AuditLog.at, parse_datetime, ORDER_OPS),
    },
    sortable={"id": AuditLog.id, "at": AuditLog.at, "action": AuditLog.action},
    default_sort=("-at", "-id"),
    search=(AuditLog.action, AuditLog.entity, AuditLog.entity_id),
)


def row(
    *, actor_id: int | None, action: str, entity: str, entity_id: object | None = None, **data: Any
) -> dict[str, Any]:
    """The column values of an audit row, for writes that insert it with Core."""
    return {
        "actor_id": actor_id,
        "action": action,
        "entity": entity,
        **({} if entity_id is None else {"entity_id": str(entity_id)}),
        "data": data or None,
        "at": utcnow(),
    }


def record(
    session: AsyncSession,
    *,
    actor_id: int | None,
    action: str,
    entity: str,
    entity_id: object | None = None,
    **data: Any,
) -> None:
    session.add(
        AuditLog(
            actor_id=actor_id,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            data=data or None,
        )
    )


async def list_entries(session: AsyncSession, query: ListQuery) -> tuple[Sequence[AuditLog], int]:
    """A page of the audit trail, as ``query`` filters and sorts it."""
    return await fetch_page(session, select(AuditLog), query, AuditLog.id.desc())
