"""The OpenAPI document is usable as it is: a typed client generated from this commit's
`/openapi.json` (openapi-python-client) signs in, reads the menu with filters, places an
order and reads it back, through its typed functions only."""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from commissary.models import Role
from tests.conftest import PASSWORD, Backend, MakeUser
from tests.menu import make_menu
from tests.test_openapi import build_app

BIN = Path(sys.executable).parent
PACKAGE = "commissary_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from the document the app serves."""
    generator = shutil.which("openapi-python-client", path=str(BIN))
    if generator is None:
        pytest.skip("openapi-python-client is not installed")
    home = tmp_path_factory.mktemp("client")
    document = asyncio.run(served_document(home))
    (home / "openapi.json").write_text(json.dumps(document))
    (home / "config.yaml").write_text(f"post_hooks: []\npackage_name_override: {PACKAGE}\n")
    result = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(home / "openapi.json"),
            "--config",
            str(home / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(home / PACKAGE),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(home))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(home))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


async def served_document(home: Path) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=build_app(home))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def models() -> Any:
    return importlib.import_module(f"{PACKAGE}.models")


async def test_generated_client_signs_in_reads_the_menu_and_places_an_order(
    generated: ModuleType, backend: Backend, make_user: MakeUser
) -> None:
    hero = await make_user(Role.CUSTOMER)
    menu = await make_menu(backend)
    transport = httpx.ASGITransport(app=backend.app)
    anonymous = generated.Client(base_url="http://testserver", httpx_args={"transport": transport})

    tokens = await api("auth.auth_login").asyncio(
        client=anonymous,
        body=models().LoginIn(email=hero.user.email, password=PASSWORD),
    )
    assert isinstance(tokens, models().TokenPair), tokens
    signed_in = generated.AuthenticatedClient(
        base_url="http://testserver", token=tokens.access_token, httpx_args={"transport": transport}
    )

    page = await api("catalog.catalog_list_products").asyncio(
        client=signed_in,
        restaurant_id=menu.restaurant.id,
        price_lte=5.0,
        sort=[models().CatalogListProductsSortItem.PRICE_DESC],
        limit=10,
    )
    assert page.total == 2  # the cake and the sprinkle cost at most 5
    assert [product.name for product in page.items] == ["Comet Cake", "Stardust Sprinkle"]
    cheapest = page.items[-1]

    order_in = models().OrderCreate(
        restaurant_id=menu.restaurant.id,
        items=[models().OrderItemIn(product_id=cheapest.id, quantity=3)],
    )
    placed = await api("orders.orders_place").asyncio(client=signed_in, body=order_in)
    assert isinstance(placed, models().OrderRead), placed
    assert placed.status == models().OrderStatus.PENDING

    read = await api("orders.orders_read").asyncio(client=signed_in, order_id=placed.id)
    assert isinstance(read, models().OrderRead), read
    assert read.id == placed.id
    assert [(line.product_name, line.quantity) for line in read.items] == [("Stardust Sprinkle", 3)]
    mine = await api("orders.orders_list").asyncio(
        client=signed_in, restaurant_id_in=[menu.restaurant.id]
    )
    assert [order.id for order in mine.items] == [placed.id]


async def test_generated_client_gets_problem_details_for_errors(
    generated: ModuleType, backend: Backend
) -> None:
    transport = httpx.ASGITransport(app=backend.app)
    anonymous = generated.Client(base_url="http://testserver", httpx_args={"transport": transport})

    refused = await api("orders.orders_list").asyncio(client=anonymous)
    missing = await api("catalog.catalog_read_product").asyncio(client=anonymous, product_id=404)

    assert isinstance(refused, models().Problem)
    assert (refused.status, refused.code) == (401, "not_authenticated")
    assert isinstance(missing, models().Problem)
    assert missing.status == 404
