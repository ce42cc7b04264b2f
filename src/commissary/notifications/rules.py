"""Which order events concern whom, and what the notification says: a pure function of the
event (the README's notifications table says the same).

- customer: ``accepted``, ``rejected`` (both e-mailed), ``status.cancelled`` (unless they
  cancelled it), ``status.ready``, ``picked_up``/``status.out_for_delivery`` (e-mailed),
  ``delivered``/``status.completed``, ``courier.assigned``;
- the restaurant's owners: ``created``, ``acceptance.overdue``, and ``status.cancelled``
  when the customer cancelled;
- the courier: ``status.cancelled`` of their delivery and ``courier.released`` (unless they
  did it themselves).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass

from commissary.core.money import money_text
from commissary.events.sequencer import StreamEvent
from commissary.models import NotificationKind

K = NotificationKind
# Sent by e-mail too (to the customer), once; every other kind is in-app only.
EMAILED = frozenset({K.ORDER_ACCEPTED, K.ORDER_REJECTED, K.ORDER_OUT_FOR_DELIVERY})
COMPLETED_TYPES = frozenset({"status.completed", "delivered"})


class Audience(enum.StrEnum):
    CUSTOMER = "customer"
    OWNERS = "owners"  # every owner of the order's restaurant
    COURIER = "courier"


@dataclass(frozen=True)
class Draft:
    """A notification to write: for whom (an audience, or one member), what, and its text."""

    audience: Audience
    kind: NotificationKind
    title: str
    body: str
    user_id: int | None = None  # the member, when the audience is one person


def _reason(event: StreamEvent) -> str:
    data = event.data or {}
    if data.get("reason"):
        return f": {data['reason']}"
    if data.get("conflicts"):
        return ": it contains something you declared an allergy to"
    return ""


def _ready_by(event: StreamEvent) -> str:
    data = event.data or {}
    minutes, ready_by = data.get("prep_minutes"), data.get("ready_by")
    if ready_by:
        at = dt.datetime.fromisoformat(str(ready_by)).astimezone(dt.UTC)
        return f"; it should be ready at {at:%H:%M} UTC"
    if minutes:
        return f"; it should be ready in {minutes} minutes"
    return ""


def _by_customer(event: StreamEvent) -> bool:
    return event.actor == "customer"


def _cancelled(event: StreamEvent, place: str) -> list[Draft]:
    n, drafts = event.order_id, []
    if event.customer_id is not None and not (
        _by_customer(event) and event.actor_id == event.customer_id
    ):
        text = f"Your order #{n} at {place} was cancelled{_reason(event)}."
        drafts.append(Draft(Audience.CUSTOMER, K.ORDER_CANCELLED, f"Order #{n} cancelled", text))
    if _by_customer(event):
        drafts.append(
            Draft(
                Audience.OWNERS,
                K.ORDER_CANCELLED,
                f"Order #{n} cancelled by the customer",
                f"The customer cancelled order #{n} at {place}{_reason(event)}.",
            )
        )
    if event.courier_id is not None and event.actor_id != event.courier_id:
        drafts.append(
            Draft(
                Audience.COURIER,
                K.DELIVERY_CANCELLED,
                f"Delivery of order #{n} cancelled",
                f"Order #{n} from {place} was cancelled: there is nothing to deliver.",
            )
        )
    return drafts


def _released(event: StreamEvent, place: str) -> list[Draft]:
    data = event.data or {}
    courier = data.get("courier_id") or event.courier_id
    if not isinstance(courier, int) or event.actor_id == courier:
        return []  # the courier gave it back themselves
    n = event.order_id
    text = f"The delivery of order #{n} from {place} was taken off your list."
    return [Draft(Audience.COURIER, K.DELIVERY_RELEASED, f"Delivery #{n} released", text, courier)]


def _for_customer(kind: NotificationKind, title: str, body: str) -> list[Draft]:
    return [Draft(Audience.CUSTOMER, kind, title, body)]


def _ready(event: StreamEvent, place: str) -> list[Draft]:
    n = event.order_id
    where = {
        "pickup": f"Your order #{n} is ready to pick up at {place}.",
        "delivery": f"Your order #{n} from {place} is ready and waits for its courier.",
        "dine_in": f"Your order #{n} at {place} is ready and on its way to your table.",
    }
    body = where.get(event.fulfillment, f"Your order #{n} at {place} is ready.")
    return _for_customer(K.ORDER_READY, f"Order #{n} is ready", body)


def _completed(event: StreamEvent, place: str) -> list[Draft]:
    n = event.order_id
    if event.fulfillment == "delivery":
        body = f"Your order #{n} from {place} was delivered. Enjoy!"
        return _for_customer(K.ORDER_COMPLETED, f"Order #{n} delivered", body)
    body = f"Your order #{n} at {place} is complete. Enjoy!"
    return _for_customer(K.ORDER_COMPLETED, f"Order #{n} completed", body)


def _created(event: StreamEvent, place: str) -> list[Draft]:
    n, total = event.order_id, f"{money_text(event.total)} {event.currency}"
    how = event.fulfillment.replace("_", " ")
    body = f"Order #{n} at {place} ({how}): {total}."
    return [Draft(Audience.OWNERS, K.ORDER_CREATED, f"New order #{n}", body)]


Rule = Callable[[StreamEvent, str], list[Draft]]
RULES: dict[str, Rule] = {
    "created": _created,
    "accepted": lambda e, place: _for_customer(
        K.ORDER_ACCEPTED,
        f"Order #{e.order_id} accepted",
        f"{place} accepted your order #{e.order_id}{_ready_by(e)}.",
    ),
    "rejected": lambda e, place: _for_customer(
        K.ORDER_REJECTED,
        f"Order #{e.order_id} rejected",
        f"{place} could not take your order #{e.order_id}{_reason(e)}.",
    ),
    "status.cancelled": _cancelled,
    "status.ready": _ready,
    "picked_up": lambda e, place: _for_customer(
        K.ORDER_OUT_FOR_DELIVERY,
        f"Order #{e.order_id} is on its way",
        f"Your order #{e.order_id} from {place} left with its courier and is on its way.",
    ),
    "delivered": _completed,
    "status.completed": _completed,
    "courier.assigned": lambda e, place: _for_customer(
        K.COURIER_ASSIGNED,
        f"A courier takes order #{e.order_id}",
        f"A courier accepted the delivery of your order #{e.order_id} from {place}.",
    ),
    "acceptance.overdue": lambda e, place: [
        Draft(
            Audience.OWNERS,
            K.ORDER_ACCEPTANCE_OVERDUE,
            f"Order #{e.order_id} waits for you",
            f"Order #{e.order_id} at {place} has not been accepted yet: accept or reject it "
            "before it is cancelled.",
        )
    ],
    "courier.released": _released,
}
RULES["status.out_for_delivery"] = RULES["picked_up"]


def drafts(event: StreamEvent, place: str) -> list[Draft]:
    """The notifications that ``event`` (at the restaurant named ``place``) makes."""
    rule = RULES.get(event.type)
    if rule is None:
        return []
    return [
        draft
        for draft in rule(event, place)
        if draft.audience is not Audience.CUSTOMER or event.customer_id is not None
    ]
