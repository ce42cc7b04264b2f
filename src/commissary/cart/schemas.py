"""Request and response bodies of the cart."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from commissary.core.ids import Id
from commissary.core.money import MoneyOut
from commissary.core.schemas import Input, Lax
from commissary.models import Fulfillment
from commissary.orders.schemas import MAX_OPTIONS, MAX_QUANTITY, Address, Note

Quantity = Annotated[
    int, Field(gt=0, le=MAX_QUANTITY, description="At most `ORDER_MAX_QUANTITY` of one line.")
]


class CartItemIn(Input):
    product_id: Id
    quantity: Quantity = 1
    options: Annotated[
        list[Id],
        Field(max_length=MAX_OPTIONS, description="Ids of the chosen options of the product."),
    ] = []


class CartItemUpdate(Input):
    quantity: Quantity


class CartOptionRead(BaseModel):
    id: int
    group: str
    name: str
    price_delta: MoneyOut


class CartLineRead(BaseModel):
    id: int
    product_id: int
    product_name: str
    options: list[CartOptionRead]
    quantity: int
    unit_price: Annotated[MoneyOut, Field(description="At the current menu price.")]
    line_total: MoneyOut
    is_available: bool
    problem: Annotated[
        str | None, Field(description="Why this line cannot be checked out now.")
    ] = None
    allergy_warnings: Annotated[
        list[str],
        Field(description="Ingredients and allergen tags that match your allergies."),
    ]


class CartRead(BaseModel):
    restaurant_id: int | None
    items: list[CartLineRead]
    total: MoneyOut
    currency: str | None
    can_checkout: bool


class CheckoutIn(Input):
    """How the order of the cart's lines is fulfilled; the lines come from the cart."""

    fulfillment: Annotated[Fulfillment, Lax] = Fulfillment.PICKUP
    delivery_address: Address | None = None
    note: Note | None = None

    @model_validator(mode="after")
    def _delivery_needs_address(self) -> CheckoutIn:
        if self.fulfillment is Fulfillment.DELIVERY and not self.delivery_address:
            raise ValueError("`delivery_address` is required for a delivery")
        return self
