"""A small cafeteria menu written straight to the database for order tests."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from commissary.models import KitchenMode, Product, Restaurant, restaurant_owner, restaurant_staff
from tests.conftest import Backend


@dataclass
class Menu:
    restaurant: Restaurant
    soup: Product  # safe for most heroes
    noodles: Product  # peanuts as an ingredient
    cake: Product  # a "gluten" allergen tag
    cheap: Product  # 0.10, for exact sums


async def make_menu(
    backend: Backend,
    *,
    slug: str = "cosmic-cafeteria",
    kitchen_mode: KitchenMode = KitchenMode.SIMULATED,
    owner_id: int | None = None,
    **restaurant: Any,
) -> Menu:
    async with backend.runtime.sessionmaker() as session:
        place = Restaurant(
            name=slug.replace("-", " ").title(), slug=slug, kitchen_mode=kitchen_mode, **restaurant
        )
        session.add(place)
        await session.flush()
        if owner_id is not None:
            await session.execute(
                restaurant_owner.insert().values(restaurant_id=place.id, user_id=owner_id)
            )

        def meal(name: str, price: str, ingredients: list[str], allergens: list[str]) -> Product:
            product = Product(
                restaurant_id=place.id,
                name=name,
                price=Decimal(price),
                ingredients=ingredients,
                allergens=allergens,
                origin="Vega",
            )
            session.add(product)
            return product

        menu = Menu(
            place,
            meal("Solar Soup", "7.50", ["carrot", "sunroot"], []),
            meal("Nebula Noodles", "12.25", ["noodles", "Peanuts ", "chili"], ["nuts"]),
            meal("Comet Cake", "4.00", ["flour", "sugar"], ["Gluten"]),
            meal("Stardust Sprinkle", "0.10", ["stardust"], []),
        )
        await session.commit()
    return menu


async def add_waiter(backend: Backend, restaurant_id: int, user_id: int) -> None:
    """Make ``user_id`` a waiter of the restaurant, as an admin or its owner would."""
    async with backend.runtime.sessionmaker() as session:
        await session.execute(
            restaurant_staff.insert().values(restaurant_id=restaurant_id, user_id=user_id)
        )
        await session.commit()
