"""The cafeteria's commands: `heroes`, `meals` and `orders`, through the same services as
the API. Heroes are customer accounts; meals are products; orders are placed as the hero."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import repository as catalog_repo
from commissary.catalog import service as catalog
from commissary.catalog.schemas import ProductCreate, ProductUpdate
from commissary.cli import lookup
from commissary.cli.common import app, fail, operator, run_use_case, valid_input
from commissary.core.jobs import runtime_of
from commissary.core.listing import parse_list_query
from commissary.core.money import money_text
from commissary.models import Order, OrderStatus, Product, Role, User
from commissary.orders import repository as order_repo
from commissary.orders import service as orders
from commissary.orders.schemas import OrderCreate, OrderItem, OrderItemIn
from commissary.orders.state import TERMINAL
from commissary.users import repository as user_repo
from commissary.users import service as users
from commissary.users.schemas import MeUpdate, UserCreate

heroes_app = typer.Typer(help="Heroes: the cafeteria's customers.", no_args_is_help=True)
meals_app = typer.Typer(help="Meals: the menu's products.", no_args_is_help=True)
orders_app = typer.Typer(help="Orders.", no_args_is_help=True)
app.add_typer(heroes_app, name="heroes")
app.add_typer(meals_app, name="meals")
app.add_typer(orders_app, name="orders")

Allergy = Annotated[list[str] | None, typer.Option("--allergy", help="Repeat for each allergy.")]


def hero_line(user: User) -> str:
    allergies = f"[{', '.join(user.allergies)}]" if user.allergies else "none"
    return (
        f"#{user.id} {user.full_name} <{user.email}> planet={user.planet or '-'} "
        f"allergies={allergies}{'' if user.is_verified else ' (unverified)'}"
    )


HeroRef = Annotated[str, typer.Argument(metavar="HERO", help=lookup.HERO_HELP)]
MealRef = Annotated[str, typer.Argument(metavar="MEAL", help=lookup.MEAL_HELP)]


@heroes_app.command("list")
def heroes_list(
    planet: Annotated[str | None, typer.Option(help="Only heroes of this planet.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 100,
) -> None:
    """List heroes."""
    params = {"role": "customer", "limit": str(limit), **({"planet": planet} if planet else {})}

    async def use_case(session: AsyncSession) -> list[User]:
        found, _ = await users.list_users(session, parse_list_query(params, user_repo.USER_LIST))
        return found

    for user in run_use_case(use_case):
        typer.echo(hero_line(user))


@heroes_app.command("create")
def heroes_create(
    email: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option(help="Full name.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    planet: Annotated[str | None, typer.Option()] = None,
    allergy: Allergy = None,
) -> None:
    """Create a hero (verified: an operator vouches for the address)."""
    with valid_input():
        data = UserCreate(
            email=email,
            password=password,
            full_name=name,
            planet=planet,
            allergies=allergy or [],
            role=Role.CUSTOMER,
        )
    user = run_use_case(lambda s: users.create_user(s, data, actor_id=None, verified=True))
    typer.echo(hero_line(user))


@heroes_app.command("show")
def heroes_show(hero: HeroRef) -> None:
    """Show a hero."""
    typer.echo(hero_line(run_use_case(lambda s: lookup.hero(s, hero))))


@heroes_app.command("update")
def heroes_update(
    hero: HeroRef,
    name: Annotated[str | None, typer.Option()] = None,
    planet: Annotated[str | None, typer.Option()] = None,
    allergy: Allergy = None,
    clear_allergies: Annotated[bool, typer.Option(help="Remove every allergy.")] = False,
) -> None:
    """Change a hero's name, planet or allergies (given allergies replace the old ones)."""
    changes: dict[str, object] = {
        k: v for k, v in (("full_name", name), ("planet", planet)) if v is not None
    }
    if allergy or clear_allergies:
        changes["allergies"] = allergy or []
    with valid_input():
        update = MeUpdate.model_validate(changes)

    async def use_case(session: AsyncSession) -> User:
        return await users.update_me(session, await lookup.hero(session, hero), update)

    typer.echo(hero_line(run_use_case(use_case)))


@heroes_app.command("delete")
def heroes_delete(hero: HeroRef) -> None:
    """Delete a hero; their orders stay, without the link to the account."""

    async def use_case(session: AsyncSession) -> str:
        user = await lookup.hero(session, hero)
        gone = f"hero #{user.id} {user.full_name} <{user.email}> deleted"
        await users.delete_user(session, user.id, None)
        return gone

    typer.echo(run_use_case(use_case))


def meal_line(meal: Product) -> str:
    tags = f" allergens=[{', '.join(meal.allergens)}]" if meal.allergens else ""
    return (
        f"#{meal.id} {meal.name} {money_text(meal.price)} {meal.currency} "
        f"from {meal.origin or '-'} (restaurant {meal.restaurant_id}) "
        f"ingredients=[{', '.join(meal.ingredients)}]{tags}"
        f"{'' if meal.is_available else ' (unavailable)'}"
    )


Ingredient = Annotated[list[str] | None, typer.Option("--ingredient", help="Repeatable.")]
Allergen = Annotated[list[str] | None, typer.Option("--allergen", help="Repeatable tag.")]


@meals_app.command("list")
def meals_list(
    restaurant: Annotated[int | None, typer.Option(help="Only this restaurant's meals.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 100,
) -> None:
    """List meals."""
    params = {"limit": str(limit), "sort": "id"}
    if restaurant is not None:
        params["restaurant_id"] = str(restaurant)

    async def use_case(session: AsyncSession) -> list[Product]:
        found, _ = await catalog.list_products(
            session, parse_list_query(params, catalog_repo.PRODUCT_LIST)
        )
        return found

    for meal in run_use_case(use_case):
        typer.echo(meal_line(meal))


@meals_app.command("create")
def meals_create(
    restaurant: Annotated[int, typer.Option(help="The restaurant's id.")],
    name: Annotated[str, typer.Option()],
    price: Annotated[str, typer.Option(help="Exact decimal, e.g. 12.50.")],
    ingredient: Ingredient = None,
    allergen: Allergen = None,
    origin: Annotated[str | None, typer.Option(help="The meal's origin planet.")] = None,
    description: Annotated[str, typer.Option()] = "",
    category: Annotated[int | None, typer.Option(help="A category id.")] = None,
) -> None:
    """Add a meal to a restaurant's menu."""
    with valid_input():
        # A mapping, as a request body would be: the price arrives as text.
        data = ProductCreate.model_validate(
            {
                "restaurant_id": restaurant,
                "name": name,
                "price": price,
                "ingredients": ingredient or [],
                "allergens": allergen or [],
                "origin": origin,
                "description": description,
                "category_id": category,
            }
        )
    typer.echo(meal_line(run_use_case(lambda s: catalog.create_product(s, data, operator()))))


@meals_app.command("show")
def meals_show(meal: MealRef) -> None:
    """Show a meal."""
    typer.echo(meal_line(run_use_case(lambda s: lookup.meal(s, meal))))


@meals_app.command("update")
def meals_update(
    meal: MealRef,
    name: Annotated[str | None, typer.Option()] = None,
    price: Annotated[str | None, typer.Option()] = None,
    ingredient: Ingredient = None,
    allergen: Allergen = None,
    origin: Annotated[str | None, typer.Option()] = None,
    available: Annotated[bool | None, typer.Option("--available/--unavailable")] = None,
) -> None:
    """Change a meal (given ingredients or allergens replace the old ones)."""
    given = {
        "name": name,
        "price": price,
        "ingredients": ingredient,
        "allergens": allergen,
        "origin": origin,
        "is_available": available,
    }
    with valid_input():
        data = ProductUpdate.model_validate({k: v for k, v in given.items() if v is not None})

    async def use_case(session: AsyncSession) -> Product:
        found = await lookup.meal(session, meal)
        return await catalog.update_product(session, found.id, data, operator())

    typer.echo(meal_line(run_use_case(use_case)))


@meals_app.command("delete")
def meals_delete(meal: MealRef) -> None:
    """Remove a meal from the menu; past orders keep its name and price."""

    async def use_case(session: AsyncSession) -> str:
        found = await lookup.meal(session, meal)
        gone = f"meal #{found.id} {found.name} deleted"
        media_dir = runtime_of(session).settings.media_dir
        await catalog.delete_product(session, found.id, operator(), media_dir)
        return gone

    typer.echo(run_use_case(use_case))


def order_lines(order: Order | orders.PlacedOrder) -> list[str]:
    out = [
        f"order #{order.id} [{order.status.value}] for {order.customer_name}: "
        f"{money_text(order.total)} {order.currency}"
    ]
    out += [
        f"  {line.quantity} x {line.product_name} @ {money_text(line.unit_price)}"
        for line in order.lines
    ]
    if order.message:
        out.append(f"  message: {order.message}")
    return out


# A manual kitchen's order then waits for the restaurant, not for a worker.
WAIT_UNTIL = TERMINAL | {OrderStatus.AWAITING_ACCEPTANCE}


async def _wait_for_outcome(session: AsyncSession, order: orders.PlacedOrder) -> None:
    """Follow the order until it is finished (or left waiting for a manual kitchen). Each
    look is its own short transaction, so the worker (maybe this process) can write."""
    lines: list[str] = []
    for _ in range(120):
        current = await order_repo.get(session, order.id, None)
        lines = order_lines(current) if current is not None else []
        finished = current is None or current.status in WAIT_UNTIL
        await session.rollback()
        if finished:
            break
        await asyncio.sleep(0.25)
    for line in lines:
        typer.echo(line)


@orders_app.command("create")
def orders_create(
    hero: Annotated[str, typer.Option(help=lookup.HERO_HELP)],
    meal: Annotated[
        list[str],
        typer.Option(help="MEAL or MEAL:QUANTITY, MEAL an id or a name; repeatable."),
    ],
    wait: Annotated[bool, typer.Option(help="Wait for the allergen check and the kitchen.")] = True,
) -> None:
    """Order meals for a hero, as that hero."""
    wanted = [lookup.meal_and_quantity(m) for m in meal]

    async def use_case(session: AsyncSession) -> orders.PlacedOrder:
        customer = await lookup.hero(session, hero)
        items: list[OrderItem] = [
            OrderItemIn(product_id=(await lookup.meal(session, ref)).id, quantity=quantity)
            for ref, quantity in wanted
        ]
        return await orders.place_order(session, customer, OrderCreate(items=items))

    order = run_use_case(use_case, then=_wait_for_outcome if wait else None)
    if not wait:
        for line in order_lines(order):
            typer.echo(line)


@orders_app.command("show")
def orders_show(order_id: int) -> None:
    """Show an order and its history."""

    async def use_case(session: AsyncSession) -> list[str]:
        order = await order_repo.get(session, order_id, None)
        if order is None:
            fail(f"order {order_id} not found")
        events = await order_repo.events(session, order_id)
        return order_lines(order) + [
            f"  {e.sequence}. {e.created_at:%H:%M:%S} {e.type} by {e.actor}" for e in events
        ]

    for line in run_use_case(use_case):
        typer.echo(line)


@orders_app.command("list")
def orders_list(
    hero: Annotated[
        str | None, typer.Option(help="Only this hero's orders (id, e-mail or name).")
    ] = None,
    status: Annotated[OrderStatus | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
) -> None:
    """List orders, newest first."""
    params = {"limit": str(limit)}
    if status is not None:
        params["status"] = status.value

    async def use_case(session: AsyncSession) -> list[Order]:
        if hero is not None:
            params["customer_id"] = str((await lookup.hero(session, hero)).id)
        found, _ = await order_repo.list_page(
            session, parse_list_query(params, order_repo.ORDER_LIST), None
        )
        return found

    for order in run_use_case(use_case):
        typer.echo(order_lines(order)[0])


async def _customer_of(session: AsyncSession, order_id: int) -> User:
    customer_id = await order_repo.customer_id_of(session, order_id)
    if customer_id is None:
        fail(f"order {order_id} not found, or not a hero's order")
    return await users.get_user(session, customer_id)


@orders_app.command("cancel")
def orders_cancel(order_id: int, reason: Annotated[str | None, typer.Option()] = None) -> None:
    """Cancel a pending or in-progress order, on behalf of its hero."""

    async def use_case(session: AsyncSession) -> Order:
        return await orders.cancel(session, await _customer_of(session, order_id), order_id, reason)

    for line in order_lines(run_use_case(use_case)):
        typer.echo(line)


@orders_app.command("delete")
def orders_delete(order_id: int) -> None:
    """Cancel an active order, or delete a finished one (as the cafeteria's DELETE)."""

    async def use_case(session: AsyncSession) -> Order | None:
        return await orders.delete_or_cancel(
            session, await _customer_of(session, order_id), order_id
        )

    order = run_use_case(use_case)
    typer.echo(f"order {order_id} deleted" if order is None else order_lines(order)[0])
