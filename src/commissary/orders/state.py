"""The order state machine: one table says which status may follow which, and for whom.
Every status change goes through :func:`transition`, which writes the matching event."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.core.db import utcnow
from commissary.core.errors import Conflict
from commissary.events.sequencer import SEQUENCE_JOB
from commissary.models import Fulfillment, Order, OrderEvent, OrderStatus

if TYPE_CHECKING:
    from commissary.orders.service import PlacedOrder

S = OrderStatus


class Actor(enum.StrEnum):
    """Who moves an order: the worker (``system``), the person it is for (``customer``,
    including the waiter who keyed it in), the restaurant (``staff``), or the courier who
    took the delivery (``courier``)."""

    SYSTEM = "system"
    CUSTOMER = "customer"
    STAFF = "staff"
    COURIER = "courier"


Guard = Callable[[Fulfillment], str | None]


def _delivery_only(fulfillment: Fulfillment) -> str | None:
    return None if fulfillment is Fulfillment.DELIVERY else "not_a_delivery"


def _not_delivery(fulfillment: Fulfillment) -> str | None:
    return "delivery_must_go_out_first" if fulfillment is Fulfillment.DELIVERY else None


@dataclass(frozen=True)
class Rule:
    actors: frozenset[Actor]
    guard: Guard | None = None


_ANYONE = frozenset(Actor)
TABLE: dict[tuple[OrderStatus, OrderStatus], Rule] = {
    (S.PENDING, S.IN_PROGRESS): Rule(frozenset({Actor.SYSTEM})),
    (S.PENDING, S.AWAITING_ACCEPTANCE): Rule(frozenset({Actor.SYSTEM})),
    (S.PENDING, S.CANCELLED): Rule(_ANYONE),
    # The restaurant accepts (``accepted``) or rejects (``rejected``); the sweep cancels an
    # order nobody accepted in time.
    (S.AWAITING_ACCEPTANCE, S.IN_PROGRESS): Rule(frozenset({Actor.STAFF})),
    (S.AWAITING_ACCEPTANCE, S.CANCELLED): Rule(_ANYONE),
    (S.IN_PROGRESS, S.READY): Rule(frozenset({Actor.STAFF, Actor.SYSTEM})),
    (S.IN_PROGRESS, S.COMPLETED): Rule(frozenset({Actor.SYSTEM}), _not_delivery),
    (S.IN_PROGRESS, S.CANCELLED): Rule(_ANYONE),
    # The courier picks the order up and hands it over with the customer's code; the
    # restaurant keeps both moves for its own drivers and for a handover locked by wrong codes.
    (S.READY, S.OUT_FOR_DELIVERY): Rule(frozenset({Actor.STAFF, Actor.COURIER}), _delivery_only),
    (S.READY, S.COMPLETED): Rule(frozenset({Actor.STAFF}), _not_delivery),
    (S.READY, S.CANCELLED): Rule(frozenset({Actor.STAFF})),
    (S.OUT_FOR_DELIVERY, S.COMPLETED): Rule(frozenset({Actor.STAFF, Actor.COURIER})),
}
TERMINAL = frozenset({S.COMPLETED, S.CANCELLED})
ACTIVE = frozenset({S.PENDING, S.AWAITING_ACCEPTANCE, S.IN_PROGRESS})


def refusal(
    current: OrderStatus, target: OrderStatus, fulfillment: Fulfillment, actor: Actor | None
) -> str | None:
    """The reason code why ``actor`` may not move an order from ``current`` to ``target``,
    or None when the move is allowed."""
    if current in TERMINAL:
        return "order_closed"
    if current == target:
        return "already_in_status"
    rule = TABLE.get((current, target))
    if rule is None:
        return "transition_not_allowed"
    if actor is None or actor not in rule.actors:
        return "transition_not_allowed_for_role"
    return rule.guard(fulfillment) if rule.guard else None


def allowed(
    current: OrderStatus, fulfillment: Fulfillment, actor: Actor | None
) -> list[OrderStatus]:
    return [
        to for (frm, to) in TABLE if frm == current and not refusal(frm, to, fulfillment, actor)
    ]


class TransitionRefused(Conflict):
    code = "transition_not_allowed"


def _append(
    session: AsyncSession,
    order: Order,
    type_: str,
    actor: Actor,
    actor_id: int | None,
    from_status: OrderStatus | None = None,
    data: dict[str, Any] | None = None,
) -> OrderEvent:
    event = OrderEvent(
        order_id=order.id,
        sequence=order.version,
        type=type_,
        from_status=from_status,
        to_status=order.status,
        actor=actor.value,
        actor_id=actor_id,
        data=data,
        created_at=utcnow(),
    )
    session.add(event)
    jobs.wake(session, SEQUENCE_JOB)  # the stream numbers it once this commits
    return event


def created_event(
    order: Order | PlacedOrder, *, actor: Actor, actor_id: int | None
) -> dict[str, Any]:
    """The column values of a new order's first event (the order is stored at version 1, so
    placing an order costs no UPDATE); written together with the order."""
    assert order.version == 1
    return {
        "sequence": 1,
        "type": "created",
        "from_status": None,
        "to_status": order.status,
        "actor": actor.value,
        "actor_id": actor_id,
        "data": None,
        "created_at": order.order_time,
    }


def transition(
    session: AsyncSession,
    order: Order,
    target: OrderStatus,
    *,
    actor: Actor,
    actor_id: int | None = None,
    message: str | None = None,
    data: dict[str, Any] | None = None,
    type_: str | None = None,
) -> OrderEvent:
    """Move ``order`` to ``target`` or raise a 409 with the reason code. The event's type is
    ``status.<target>`` unless the step has a name of its own (``type_``: ``accepted``,
    ``picked_up``…). The caller holds the order's row lock (``repository.lock``), so
    concurrent moves serialize and each one sees the status the previous one left."""
    code = refusal(order.status, target, order.fulfillment, actor)
    if code is not None:
        raise TransitionRefused(
            f"order {order.id} cannot go from {order.status.value} to {target.value} ({code})",
            code=code,
            extra={"current_status": order.status.value, "target_status": target.value},
        )
    previous = order.status
    now = utcnow()
    order.status = target
    order.updated_at = now
    if message is not None:
        order.message = message
    if target is S.COMPLETED:
        order.completed_time = now
    order.version += 1
    kind = type_ or f"status.{target.value}"
    return _append(session, order, kind, actor, actor_id, previous, data)


def record(
    session: AsyncSession,
    order: Order,
    type_: str,
    *,
    actor: Actor,
    actor_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> OrderEvent:
    """Write an event that leaves the status as it is (``edited``): like a transition it
    bumps ``version``, which is the event's ``sequence``, so the history stays gap-free.
    The caller holds the order's row lock (``repository.lock``)."""
    order.updated_at = utcnow()
    order.version += 1
    return _append(session, order, type_, actor, actor_id, order.status, data)
