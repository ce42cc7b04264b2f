from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from commissary.catalog.schemas import Price
from commissary.core.ids import Id
from commissary.core.money import MoneyOut
from commissary.core.schemas import Input, Lax, NotNull
from commissary.core.text import Tags, free_text
from commissary.models import Fulfillment, OrderStatus

MAX_LINES = 50
MAX_QUANTITY = 100


def _text(min_length: int, max_length: int) -> list[object]:
    return [
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(free_text),
    ]


Address = Annotated[str, *_text(1, 300)]
Note = Annotated[str, *_text(0, 500)]
CustomerName = Annotated[str, *_text(1, 120)]
Reason = Annotated[str, *_text(1, 500)]


MAX_OPTIONS = 20


class OrderItemIn(Input):
    product_id: Id
    quantity: int = Field(gt=0, le=MAX_QUANTITY)
    options: Annotated[
        list[Id],
        Field(
            max_length=MAX_OPTIONS,
            description="Ids of the chosen options (size, milk, extras) of the product.",
        ),
    ] = []


ProductName = Annotated[str, *_text(1, 120)]


class AdHocItemIn(Input):
    """A line that is not on the menu, named and priced by restaurant staff (waiter,
    restaurateur, admin). Lines of one order with the same name (trimmed, case-insensitive)
    and price are one line; one name at two prices is refused. Ad-hoc lines are checked
    against allergies only through the ``ingredients`` and ``allergens`` given here."""

    product_name: ProductName
    unit_price: Price
    quantity: int = Field(gt=0, le=MAX_QUANTITY)
    ingredients: Tags = []
    allergens: Tags = []


def _line_kind(value: Any) -> str | None:
    """``menu`` for a line with ``product_id``, ``ad_hoc`` for one with ``product_name`` or
    ``unit_price``; None (refused, naming the line) for both or neither."""
    if isinstance(value, OrderItemIn | AdHocItemIn):
        return "menu" if isinstance(value, OrderItemIn) else "ad_hoc"
    if not isinstance(value, dict):
        return None
    menu = "product_id" in value
    ad_hoc = "product_name" in value or "unit_price" in value
    if menu == ad_hoc:
        return None
    return "menu" if menu else "ad_hoc"


LINE_KIND = (
    "a line has either `product_id` (from the menu) or `product_name` and `unit_price` "
    "(ad hoc, staff only), not both or neither"
)


def _item(value: Any) -> OrderItemIn | AdHocItemIn:
    """A menu line or an ad-hoc line, validated as that kind, so that an error names the
    line's own field (``items.0.quantity``)."""
    match _line_kind(value):
        case "menu":
            return value if isinstance(value, OrderItemIn) else OrderItemIn.model_validate(value)
        case "ad_hoc":
            return value if isinstance(value, AdHocItemIn) else AdHocItemIn.model_validate(value)
    raise PydanticCustomError("line_kind", LINE_KIND)


# Chosen before the union's own validation, which then takes the model as it is, so its
# serializer knows the line's kind too.
OrderItem = Annotated[OrderItemIn | AdHocItemIn, BeforeValidator(_item)]


class LineOptionRead(BaseModel):
    """A chosen option as it was when the order was placed."""

    id: int
    group: str
    name: str
    price_delta: MoneyOut
    ingredients: list[str]
    allergens: list[str]


class OrderCreate(Input):
    """A new order. Prices come from the menu. Staff (waiter, restaurateur, admin) may order
    for a registered customer with ``customer_id``, or for a walk-in with ``customer_name``
    and the walk-in's declared ``allergies``, and may add ad-hoc lines (``product_name``,
    ``unit_price``, ``quantity``) in ``restaurant_id`` (a waiter's own restaurant when they
    have exactly one). Line totals and the total are always computed by the server."""

    items: Annotated[list[OrderItem], Field(min_length=1, max_length=MAX_LINES)]
    restaurant_id: Id | None = None
    fulfillment: Annotated[Fulfillment, Lax] = Fulfillment.PICKUP
    delivery_address: Address | None = None
    note: Note | None = None
    customer_id: Id | None = None
    customer_name: CustomerName | None = None
    allergies: Tags | None = None

    @model_validator(mode="after")
    def _delivery_needs_address(self) -> OrderCreate:
        if self.fulfillment is Fulfillment.DELIVERY and not self.delivery_address:
            raise ValueError("`delivery_address` is required for a delivery")
        return self


Items = Annotated[list[OrderItemIn], Field(min_length=1, max_length=MAX_LINES)]


class OrderEdit(Input):
    """The fields of a pending order to change; those left out stay as they are. New
    ``items`` replace the lines and are priced and checked like a new order's."""

    items: Annotated[Items | None, NotNull] = None
    fulfillment: Annotated[Fulfillment | None, Lax, NotNull] = None
    delivery_address: Address | None = None
    note: Note | None = None


class OrderReplace(Input):
    """The whole editable part of a pending order: its items, how it is fulfilled, the
    address (a delivery needs one) and the note (null or left out: none)."""

    items: Items
    fulfillment: Annotated[Fulfillment, Lax]
    delivery_address: Address | None = None
    note: Note | None = None

    @model_validator(mode="after")
    def _delivery_needs_address(self) -> OrderReplace:
        if self.fulfillment is Fulfillment.DELIVERY and not self.delivery_address:
            raise ValueError("`delivery_address` is required for a delivery")
        return self


class OrderLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: int | None
    product_name: str
    unit_price: MoneyOut
    quantity: int
    line_total: MoneyOut
    options: list[LineOptionRead]


class CourierPositionRead(BaseModel):
    lat: float
    lon: float
    located_at: dt.datetime


class OrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: OrderStatus
    message: str | None
    restaurant_id: int
    customer_id: int | None
    customer_name: str
    waiter_id: int | None
    items: list[OrderLineRead]
    total: MoneyOut
    currency: str
    fulfillment: Fulfillment
    delivery_address: str | None
    note: str | None
    order_time: dt.datetime
    completed_time: dt.datetime | None
    accepted_at: Annotated[
        dt.datetime | None, Field(description="When the restaurant accepted the order.")
    ]
    ready_by: Annotated[
        dt.datetime | None,
        Field(description="When the restaurant promised the order to be ready, if it said."),
    ]
    updated_at: dt.datetime
    allowed_transitions: list[OrderStatus]
    courier_id: int | None = Field(description="The courier delivering the order.")
    handover_code: str | None = Field(
        None,
        description="The six digits to give the courier at the door; for the order's "
        "customer only, once the order is offered to couriers.",
    )
    handover_qr: str | None = Field(
        None,
        description="The text of a QR code carrying the handover code "
        "(`commissary:handover:<order_id>:<code>`); for the order's customer only.",
    )
    courier_position: CourierPositionRead | None = Field(
        None,
        description="The courier's last position while out for delivery; for the order's "
        "customer only, dropped when the delivery ends.",
    )


class OrderEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sequence: int
    type: str
    from_status: OrderStatus | None
    to_status: OrderStatus | None
    actor: str
    actor_id: int | None
    data: dict[str, object] | None
    created_at: dt.datetime


class CancelIn(Input):
    reason: Reason | None = None


MAX_PREP_MINUTES = 240


class AcceptIn(Input):
    prep_minutes: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_PREP_MINUTES,
            description="Minutes until the order is ready; shown to the customer as `ready_by`.",
        ),
    ] = None


class RejectIn(Input):
    reason: Annotated[Reason, Field(description="Why; shown to the customer.")]


class StatusIn(Input):
    status: Annotated[OrderStatus, Lax]
    message: Reason | None = None


class ReportLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_name: str
    total_quantity: int
    total_price: MoneyOut


class SalesReportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    start_date: dt.date
    end_date: dt.date
    timezone: str = Field(description="The time zone the days are read in.")
    restaurant_id: int | None
    currency: str | None = Field(description="Null when nothing was sold.")
    items: list[ReportLineRead] = Field(description="Most sold first; ties by name.")
    total_quantity: int
    total_price: MoneyOut
