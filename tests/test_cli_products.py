"""`commissary products delete` and `commissary cache clear` against a running API: the
products leave the database and the product cache that API serves from, on both modes."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest
from click.testing import Result
from sqlalchemy import update
from typer.testing import CliRunner

from commissary.cli import app
from commissary.config import Settings
from commissary.models import Product
from tests.conftest import Backend, MakeUser
from tests.menu import make_menu
from tests.servers import free_port

PRODUCTS = "/api/v1/products"


@pytest.fixture
def same_system(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line configured like the API under test: same database and Redis."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    s = backend.settings
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("DATABASE_URL", s.database_url)
    assert s.secret_key is not None
    monkeypatch.setenv("SECRET_KEY", s.secret_key.get_secret_value())
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    if s.redis_url:
        monkeypatch.setenv("REDIS_URL", s.redis_url)


async def cli(*args: str, stdin: str | None = None) -> Result:
    """Run the command in a thread: it runs its own event loop, as from a shell."""
    return await asyncio.to_thread(
        CliRunner().invoke, app, list(args), input=stdin, catch_exceptions=False
    )


async def cached(client: httpx.AsyncClient, url: str) -> httpx.Response:
    await client.get(url)
    response = await client.get(url)
    assert response.headers["X-Cache"] == "hit"
    return response


@pytest.mark.usefixtures("same_system")
async def test_products_delete_reports_each_id_and_drops_the_cached_answers(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    hero = await make_user()
    placed = await client.post(
        "/api/v1/orders",
        json={"items": [{"product_id": menu.soup.id, "quantity": 1}]},
        headers=hero.headers,
    )
    order_id = placed.json()["id"]
    await cached(client, f"{PRODUCTS}/{menu.soup.id}")
    await cached(client, PRODUCTS)

    result = await cli("products", "delete", str(menu.soup.id), "999999", str(menu.cake.id))
    assert result.exit_code == 1  # one id was not found
    assert result.output.splitlines() == [
        f"product #{menu.soup.id} Solar Soup: deleted",
        "product #999999: not found",
        f"product #{menu.cake.id} Comet Cake: deleted",
    ]
    gone = await client.get(f"{PRODUCTS}/{menu.soup.id}")
    assert gone.status_code == 404
    listed = await client.get(PRODUCTS)
    assert listed.headers["X-Cache"] == "miss"
    assert {p["name"] for p in listed.json()["items"]} == {"Nebula Noodles", "Stardust Sprinkle"}
    order = (await client.get(f"/api/v1/orders/{order_id}", headers=hero.headers)).json()
    assert order["items"][0]["product_name"] == "Solar Soup"
    assert order["items"][0]["product_id"] is None


@pytest.mark.usefixtures("same_system")
async def test_products_delete_of_a_whole_menu_asks_first(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    menu = await make_menu(backend)
    other = await make_menu(backend, slug="other-place")
    restaurant = str(menu.restaurant.id)

    kept = await cli("products", "delete", "--restaurant", restaurant, stdin="n\n")
    assert kept.exit_code == 1
    assert "Delete all 4 products of restaurant" in kept.output
    assert "nothing deleted" in kept.output
    assert (await client.get(f"{PRODUCTS}/{menu.soup.id}")).status_code == 200

    done = await cli("products", "delete", "--restaurant", restaurant, stdin="y\n")
    assert done.exit_code == 0, done.output
    assert done.output.count(": deleted") == 4
    remaining = (await client.get(PRODUCTS)).json()["items"]
    assert {p["restaurant_id"] for p in remaining} == {other.restaurant.id}

    empty = await cli("products", "delete", "--restaurant", restaurant, "--yes")
    assert empty.exit_code == 0
    assert "has no products: nothing deleted" in empty.output
    unknown = await cli("products", "delete", "--restaurant", "999999", "--yes")
    assert unknown.exit_code == 2
    both = await cli("products", "delete", "1", "--restaurant", restaurant)
    assert both.exit_code == 2


@pytest.mark.usefixtures("same_system")
async def test_cache_clear_makes_the_api_read_the_database_again(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    menu = await make_menu(backend)
    url = f"{PRODUCTS}/{menu.soup.id}"
    await cached(client, url)
    # A change made behind the API's back (no invalidation), as a database script would.
    async with backend.runtime.sessionmaker() as session:
        await session.execute(
            update(Product).where(Product.id == menu.soup.id).values(price=Decimal("9.99"))
        )
        await session.commit()
    assert (await client.get(url)).json()["price"] == "7.50"

    cleared = await cli("cache", "clear")
    assert cleared.exit_code == 0, cleared.output
    assert cleared.output.strip() == "product cache cleared"
    fresh = await client.get(url)
    assert (fresh.headers["X-Cache"], fresh.json()["price"]) == ("miss", "9.99")


@pytest.mark.usefixtures("same_system")
async def test_products_delete_with_redis_away_deletes_nothing(
    client: httpx.AsyncClient, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend.redis is None:
        pytest.skip("the embedded default keeps its cache in process")
    menu = await make_menu(backend)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    refused = await cli("products", "delete", str(menu.soup.id))
    assert refused.exit_code == 2
    assert "cannot be reached: nothing done" in refused.output
    assert (await client.get(f"{PRODUCTS}/{menu.soup.id}")).status_code == 200
