from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from commissary.core.money import MoneyOut
from commissary.core.schemas import Input
from commissary.models import OrderStatus

HandoverCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class DeliveryItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_name: str
    quantity: int


class DeliveryRead(BaseModel):
    """A delivery as a courier sees it: where to fetch it, where to bring it, what it is
    worth. The customer's name only for the courier who took it; never the handover code."""

    order_id: int
    status: OrderStatus
    restaurant_id: int
    restaurant_name: str
    restaurant_address: str
    delivery_address: str
    items: list[DeliveryItemRead]
    total: MoneyOut
    currency: str
    offered_at: dt.datetime | None = Field(description="Set while the order waits for a courier.")
    courier_id: int | None
    customer_name: str | None = Field(
        description="For the courier who took the delivery (and admins); null in offers."
    )
    handover_attempts_left: int = Field(description="Wrong handover codes still allowed.")
    is_handover_locked: bool
    updated_at: dt.datetime


class HandoverIn(Input):
    handover_code: HandoverCode = Field(description="The six digits the customer shows.")


class LocationIn(Input):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude, degrees.")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude, degrees.")


class CourierPosition(BaseModel):
    """The courier's last position, as the order's customer sees it."""

    lat: float
    lon: float
    located_at: dt.datetime
