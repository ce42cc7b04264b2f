"""`commissary demo`: a cosmic cafeteria to play with."""

from __future__ import annotations

from decimal import Decimal

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import repository as catalog_repo
from commissary.catalog import service as catalog
from commissary.catalog.schemas import CategoryCreate, ProductCreate, RestaurantCreate
from commissary.cli.cafeteria import hero_line, meal_line
from commissary.cli.common import app, operator, run_use_case
from commissary.models import KitchenMode, Product, Role, User
from commissary.users import repository as user_repo
from commissary.users import service as users
from commissary.users.schemas import UserCreate

DEMO_PASSWORD = "stardust-nebula-42"  # noqa: S105 - the demo heroes' published password
SLUG = "cosmic-cafeteria"

HEROES = [
    ("quill@cafeteria.example", "Peter Quill", "Terra", ["peanuts"]),
    ("gamora@cafeteria.example", "Gamora", "Zen-Whoberi", ["shellfish"]),
    ("drax@cafeteria.example", "Drax", "Kylos", []),
    ("rocket@cafeteria.example", "Rocket", "Halfworld", ["gluten", "citrus"]),
    ("mantis@cafeteria.example", "Mantis", "Ego's planet", ["milk"]),
]

# name, price, category, origin, ingredients, allergen tags
MEALS = [
    (
        "Nebula Noodles",
        "12.50",
        "Mains",
        "Luphomoid",
        ["noodles", "peanuts", "chili", "void mushrooms"],
        ["nuts"],
    ),
    (
        "Xandarian Star Soup",
        "8.90",
        "Mains",
        "Xandar",
        ["star carrots", "nova beans", "sunroot"],
        [],
    ),
    (
        "Knowhere Krill Curry",
        "14.00",
        "Mains",
        "Knowhere",
        ["space krill", "coconut milk", "rice"],
        ["shellfish"],
    ),
    ("Kree Kale Salad", "9.40", "Mains", "Hala", ["blue kale", "moon seeds", "lemon"], ["citrus"]),
    (
        "Asgardian Mead Cake",
        "6.75",
        "Desserts",
        "Asgard",
        ["flour", "honey", "mead", "butter"],
        ["gluten", "milk"],
    ),
    ("Comet Sorbet", "4.20", "Desserts", "Sakaar", ["ice comet", "berry nectar"], []),
    ("Groot Root Tea", "2.80", "Drinks", "Planet X", ["bark", "mint"], []),
]


async def _load(session: AsyncSession) -> tuple[list[User], list[Product], bool]:
    actor = operator()
    existing = await catalog_repo.slug_exists(session, SLUG)
    if existing:
        return [], [], False
    restaurant = await catalog.create_restaurant(
        session,
        RestaurantCreate(
            name="Cosmic Cafeteria",
            slug=SLUG,
            description="Meals from every corner of the galaxy.",
            address="Deck 3, Knowhere",
            timezone="UTC",
            kitchen_mode=KitchenMode.SIMULATED,
        ),
        actor,
    )
    categories = {}
    for position, name in enumerate(("Mains", "Desserts", "Drinks")):
        existing_category = await catalog_repo.category_named(session, name)
        categories[name] = existing_category or await catalog.create_category(
            session, CategoryCreate(name=name, position=position), actor
        )
    meals = [
        await catalog.create_product(
            session,
            ProductCreate(
                restaurant_id=restaurant.id,
                category_id=categories[category].id,
                name=name,
                price=Decimal(price),
                origin=origin,
                ingredients=ingredients,
                allergens=allergens,
            ),
            actor,
        )
        for name, price, category, origin, ingredients, allergens in MEALS
    ]
    heroes = []
    for email, name, planet, allergies in HEROES:
        if await user_repo.get_by_email(session, email) is None:
            heroes.append(
                await users.create_user(
                    session,
                    UserCreate(
                        email=email,
                        password=DEMO_PASSWORD,
                        full_name=name,
                        planet=planet,
                        allergies=allergies,
                        role=Role.CUSTOMER,
                    ),
                    actor_id=None,
                    verified=True,
                )
            )
    return heroes, meals, True


@app.command()
def demo() -> None:
    """Load a demo cafeteria: a simulated kitchen, heroes with allergies, exotic meals.
    Running it again changes nothing."""
    heroes, meals, loaded = run_use_case(_load)
    if not loaded:
        typer.echo(
            f"the demo cafeteria ({SLUG}) is already loaded: "
            "see `commissary heroes list` and `commissary meals list`"
        )
        return
    typer.echo(f"Cosmic Cafeteria is open. Heroes (password {DEMO_PASSWORD!r}):")
    for hero in heroes:
        typer.echo("  " + hero_line(hero))
    typer.echo("Meals:")
    for meal in meals:
        typer.echo("  " + meal_line(meal))
