"""`products delete` and `cache clear`: removing products, and the product cache with them."""

from __future__ import annotations

from typing import Annotated

import typer
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import repository as catalog_repo
from commissary.catalog import service as catalog
from commissary.cli.common import app, fail, operator, run_use_case
from commissary.core import jobs
from commissary.models import Product

products_app = typer.Typer(help="Products of every restaurant's menu.", no_args_is_help=True)
cache_app = typer.Typer(help="The product (menu) cache.", no_args_is_help=True)
app.add_typer(products_app, name="products")
app.add_typer(cache_app, name="cache")


async def _require_cache(session: AsyncSession) -> None:
    """With Redis configured, refuse to start unless it answers: a deletion whose cached
    answers cannot be dropped would go on being served until they expire."""
    redis = jobs.runtime_of(session).redis
    if redis is None:
        return
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        fail(f"Redis (the product cache) cannot be reached: nothing done ({exc})")


@products_app.command("delete")
def products_delete(
    product_ids: Annotated[list[int] | None, typer.Argument(help="Ids of the products.")] = None,
    restaurant: Annotated[
        int | None, typer.Option(help="Delete every product of this restaurant's menu.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before deleting a menu.")] = False,
) -> None:
    """Delete products from the database and the product cache, saying for each id whether
    it was deleted or not found (exit status 1 when any was not found). Lines of past orders
    keep their snapshot of the product."""
    if bool(product_ids) == (restaurant is not None):
        fail("give product ids, or --restaurant ID (not both)")

    if restaurant is not None and not yes:
        # Asked outside any transaction: SQLite would hold its write lock while we wait.
        name, count = run_use_case(lambda session: _menu_size(session, restaurant))
        question = f"Delete all {count} products of restaurant #{restaurant} {name}?"
        if not typer.confirm(question, default=False):
            fail("nothing deleted", code=1)

    async def use_case(session: AsyncSession) -> list[tuple[str, bool]]:
        await _require_cache(session)
        if restaurant is not None:
            await catalog.get_restaurant(session, restaurant)  # 404 for an unknown id
            found = await _menu_of(session, restaurant)
            wanted = [p.id for p in found]
        else:
            wanted = list(dict.fromkeys(product_ids or []))
            found = await catalog_repo.products_by_ids(session, wanted)
        by_id = {p.id: p for p in found}
        media_dir = jobs.runtime_of(session).settings.media_dir
        report = []
        for product_id in wanted:
            product = by_id.get(product_id)
            if product is None:
                report.append((f"product #{product_id}: not found", False))
                continue
            await catalog.delete_product(session, product_id, operator(), media_dir)
            report.append((f"product #{product_id} {product.name}: deleted", True))
        return report

    report = run_use_case(use_case)
    if not report:
        typer.echo(f"restaurant #{restaurant} has no products: nothing deleted")
    for line, _ in report:
        typer.echo(line)
    if not all(done for _, done in report):
        raise typer.Exit(1)


async def _menu_of(session: AsyncSession, restaurant_id: int) -> list[Product]:
    stmt = select(Product).where(Product.restaurant_id == restaurant_id).order_by(Product.id)
    return list((await session.scalars(stmt)).all())


async def _menu_size(session: AsyncSession, restaurant_id: int) -> tuple[str, int]:
    place = await catalog.get_restaurant(session, restaurant_id)
    return place.name, len(await _menu_of(session, restaurant_id))


@cache_app.command("clear")
def cache_clear() -> None:
    """Empty the product cache (every cached menu answer), for every api process."""

    async def use_case(session: AsyncSession) -> None:
        await _require_cache(session)
        await jobs.runtime_of(session).cache.invalidate()

    run_use_case(use_case)
    typer.echo("product cache cleared")
