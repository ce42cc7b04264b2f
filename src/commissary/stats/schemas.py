from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from commissary.core.money import MoneyOut
from commissary.orders.schemas import ReportLineRead


class DayRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    date: dt.date
    orders: int = Field(description="Orders placed that day, cancelled ones included.")
    cancelled: int = Field(description="Of those, the ones cancelled since.")
    revenue: MoneyOut = Field(description="The totals of the orders not cancelled.")


class RestaurantFiguresRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    restaurant_id: int
    name: str
    currency: str
    orders: int
    cancelled: int
    revenue: MoneyOut


class OverviewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    start_date: dt.date = Field(description="The first day counted (`from`).")
    end_date: dt.date = Field(description="The last day counted (`to`).")
    timezone: str = Field(
        description="The time zone the days are read in: the restaurant's, else UTC."
    )
    restaurant_id: int | None
    currency: str | None = Field(description="Null when nothing was sold.")
    orders: int = Field(description="Orders placed in the range, cancelled ones included.")
    revenue: MoneyOut = Field(description="The totals of those not cancelled.")
    orders_by_status: dict[str, int] = Field(
        description="The orders placed in the range, by their status now (every status listed)."
    )
    days: list[DayRead] = Field(description="Every day of the range, oldest first.")
    top_products: list[ReportLineRead] = Field(
        description="The 10 most sold products by units, as in the sales report."
    )
    restaurants: list[RestaurantFiguresRead] = Field(description="Most revenue first.")
