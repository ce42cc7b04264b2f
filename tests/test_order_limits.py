"""Abuse ceilings of placement: units of a line, an order's total, orders per member."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import Backend, MakeUser
from tests.menu import make_menu
from tests.test_orders import ORDERS, body


@pytest.fixture
def limits(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run with other order settings, as `ORDER_*` variables would set them."""

    def apply(**values: Any) -> None:
        changed = backend.runtime.settings.model_copy(update=values)
        monkeypatch.setattr(backend.runtime, "settings", changed)

    return apply


async def count_orders(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return int((await client.get(ORDERS, headers=headers)).json()["total"])


async def test_a_line_over_the_quantity_ceiling_is_refused(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, limits: Any
) -> None:
    limits(order_max_quantity=5)
    menu = await make_menu(backend)
    hero = await make_user()
    refused = await client.post(ORDERS, json=body((menu.soup.id, 6)), headers=hero.headers)
    assert refused.status_code == 422
    assert refused.json()["code"] == "quantity_too_large"
    assert refused.json()["product_ids"] == [menu.soup.id]
    assert await count_orders(client, hero.headers) == 0
    accepted = await client.post(ORDERS, json=body((menu.soup.id, 5)), headers=hero.headers)
    assert accepted.status_code == 202


async def test_an_order_over_the_total_ceiling_is_refused(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, limits: Any
) -> None:
    menu = await make_menu(backend)
    limits(order_max_total=menu.soup.price * 2)
    hero = await make_user()
    refused = await client.post(ORDERS, json=body((menu.soup.id, 3)), headers=hero.headers)
    assert refused.status_code == 422
    assert refused.json()["code"] == "order_total_too_large"
    assert f"{menu.soup.price * 2:.2f}" in refused.json()["detail"]
    assert await count_orders(client, hero.headers) == 0
    at_ceiling = await client.post(ORDERS, json=body((menu.soup.id, 2)), headers=hero.headers)
    assert at_ceiling.status_code == 202
    assert Decimal(at_ceiling.json()["total"]) == menu.soup.price * 2


async def test_a_member_placing_too_fast_is_told_when_to_retry(
    client: httpx.AsyncClient, backend: Backend, make_user: MakeUser, limits: Any
) -> None:
    limits(order_rate_limit=3, order_rate_window=60)
    menu = await make_menu(backend)
    hero, other = await make_user(), await make_user()
    for _ in range(3):
        placed = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
        assert placed.status_code == 202
    refused = await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=hero.headers)
    assert refused.status_code == 429
    assert refused.json()["code"] == "order_rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert await count_orders(client, hero.headers) == 3
    # Another member's orders are counted apart.
    assert (
        await client.post(ORDERS, json=body((menu.soup.id, 1)), headers=other.headers)
    ).status_code == 202
