"""Request bodies accept what the OpenAPI document says: a boolean is not a number and a
number is not a boolean, though Pydantic's lax mode would convert either."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from commissary.catalog.schemas import CategoryCreate, RestaurantCreate, RestaurantUpdate
from commissary.orders.schemas import OrderCreate
from commissary.users.schemas import UserUpdate

ITEM = {"product_id": 1, "quantity": 1}


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (CategoryCreate, {"name": "Soups", "position": False}, "position"),
        (RestaurantCreate, {"name": "Knowhere", "slug": "knowhere", "is_active": 0}, "is_active"),
        (RestaurantUpdate, {"is_active": 1}, "is_active"),
        (RestaurantUpdate, {"owner_ids": [True]}, "owner_ids"),
        (OrderCreate, {"restaurant_id": True, "items": [ITEM]}, "restaurant_id"),
        (OrderCreate, {"restaurant_id": 1, "items": [{**ITEM, "quantity": True}]}, "items"),
        (UserUpdate, {"is_verified": 1.0}, "is_verified"),
    ],
)
def test_booleans_and_numbers_are_not_each_other(
    model: type[BaseModel], body: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    assert caught.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (CategoryCreate, {"name": "Soups", "position": 3}),
        (RestaurantCreate, {"name": "Knowhere", "slug": "knowhere", "is_active": False}),
        (RestaurantUpdate, {"is_active": None, "owner_ids": [1, 2]}),
        (OrderCreate, {"restaurant_id": 1, "items": [{**ITEM, "quantity": 2}]}),
        (UserUpdate, {"is_verified": True}),
    ],
)
def test_booleans_and_numbers_of_their_own_type_are_accepted(
    model: type[BaseModel], body: dict[str, Any]
) -> None:
    model.model_validate(body)
