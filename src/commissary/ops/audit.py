"""The audit trail: every write action, recorded in the transaction that performs it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.db import utcnow
from commissary.models import AuditLog


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
