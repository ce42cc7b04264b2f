"""The baselines the project's figures are divided by, measured in the same run on the same
core: what FastAPI, asyncpg and Redis can do with no application code in between.

- ``GET /bare``: a small Pydantic model, no I/O.
- ``GET /pg/products/{product_id}``: one primary-key read with raw asyncpg.
- ``POST /pg/orders``: an order and its two lines inserted with raw asyncpg in one
  transaction, into scratch tables shaped like ``customer_order`` / ``order_line`` (same
  columns, indexes and foreign keys), pre-filled with the history of the real ones.
- ``GET /redis/products/{product_id}``: a JSON value read from Redis (redis.asyncio).

Served by uvicorn, one process, pinned like the API (see ``stack.Stack.start_baseline``).
Reads ``DATABASE_URL`` and ``REDIS_URL``."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Response
from pydantic import BaseModel, Field

POOL_SIZE = int(os.environ.get("BENCH_BASELINE_POOL", "20"))
CACHE_KEY = "bench:baseline:product:{}"

SCRATCH_DDL = """
CREATE TABLE IF NOT EXISTS bench_order (
    id BIGSERIAL PRIMARY KEY,
    restaurant_id BIGINT NOT NULL REFERENCES restaurant (id) ON DELETE RESTRICT,
    customer_id BIGINT REFERENCES user_account (id) ON DELETE SET NULL,
    customer_name VARCHAR(120) NOT NULL,
    waiter_id BIGINT REFERENCES user_account (id) ON DELETE SET NULL,
    status VARCHAR(20) NOT NULL,
    message TEXT,
    fulfillment VARCHAR(20) NOT NULL,
    delivery_address VARCHAR(300),
    note VARCHAR(500),
    allergies JSON NOT NULL,
    total NUMERIC(12, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    version INTEGER NOT NULL,
    order_time TIMESTAMPTZ NOT NULL,
    completed_time TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_bench_order_status ON bench_order (status);
CREATE INDEX IF NOT EXISTS ix_bench_order_order_time ON bench_order (order_time);
CREATE INDEX IF NOT EXISTS ix_bench_order_waiter_id ON bench_order (waiter_id);
CREATE INDEX IF NOT EXISTS ix_bench_order_customer_id_id ON bench_order (customer_id, id);
CREATE INDEX IF NOT EXISTS ix_bench_order_restaurant_id_id ON bench_order (restaurant_id, id);
CREATE TABLE IF NOT EXISTS bench_order_line (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL REFERENCES bench_order (id) ON DELETE CASCADE,
    product_id BIGINT REFERENCES product (id) ON DELETE SET NULL,
    product_name VARCHAR(120) NOT NULL,
    unit_price NUMERIC(10, 2) NOT NULL,
    quantity INTEGER NOT NULL,
    line_total NUMERIC(12, 2) NOT NULL,
    ingredients JSON NOT NULL,
    allergens JSON NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_bench_order_line_order_id ON bench_order_line (order_id);
CREATE INDEX IF NOT EXISTS ix_bench_order_line_product_id ON bench_order_line (product_id);
CREATE INDEX IF NOT EXISTS ix_bench_order_line_product_name ON bench_order_line (product_name);
"""

# The history of the real tables, so the scratch ones start as full (and as analysed).
SCRATCH_FILL = """
INSERT INTO bench_order (restaurant_id, customer_id, customer_name, waiter_id, status, message,
    fulfillment, delivery_address, note, allergies, total, currency, version, order_time,
    completed_time, updated_at)
SELECT restaurant_id, customer_id, customer_name, waiter_id, status, message, fulfillment,
    delivery_address, note, allergies, total, currency, version, order_time, completed_time,
    updated_at
FROM customer_order ORDER BY id;
INSERT INTO bench_order_line (order_id, product_id, product_name, unit_price, quantity,
    line_total, ingredients, allergens)
SELECT b.id, l.product_id, l.product_name, l.unit_price, l.quantity, l.line_total,
    l.ingredients, l.allergens
FROM order_line l
JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM customer_order) o ON o.id = l.order_id
JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM bench_order) b ON b.n = o.n;
ANALYZE bench_order;
ANALYZE bench_order_line;
"""

INSERT_ORDER = """
INSERT INTO bench_order (restaurant_id, customer_id, customer_name, status, fulfillment,
    allergies, total, currency, version, order_time, updated_at)
VALUES ($1, $2, $3, 'pending', 'pickup', '[]', $4, $5, 0, now(), now())
RETURNING id, order_time
"""
INSERT_LINE = """
INSERT INTO bench_order_line (order_id, product_id, product_name, unit_price, quantity,
    line_total, ingredients, allergens)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""
READ_PRODUCT = """
SELECT id, restaurant_id, category_id, name, description, price, currency, ingredients,
    allergens, origin, is_available
FROM product WHERE id = $1
"""


class Item(BaseModel):
    id: int
    name: str
    price: str
    tags: list[str]


class ProductOut(BaseModel):
    id: int
    restaurant_id: int
    category_id: int | None
    name: str
    description: str
    price: str
    currency: str
    ingredients: list[str]
    allergens: list[str]
    origin: str | None
    is_available: bool


class LineIn(BaseModel):
    product_id: int
    quantity: int = Field(gt=0, le=100)


class OrderIn(BaseModel):
    items: list[LineIn] = Field(min_length=1, max_length=50)
    restaurant_id: int | None = None


class OrderOut(BaseModel):
    id: int
    status: str
    total: str


class State:
    pool: asyncpg.Pool
    redis: aioredis.Redis
    menu: dict[int, dict[str, Any]]
    customer_id: int | None


state = State()


async def _json_codec(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    state.pool = await asyncpg.create_pool(
        url, min_size=POOL_SIZE, max_size=POOL_SIZE, init=_json_codec
    )
    state.redis = aioredis.Redis.from_url(os.environ["REDIS_URL"], max_connections=POOL_SIZE * 5)
    async with state.pool.acquire() as conn:
        await conn.execute(SCRATCH_DDL)
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM bench_order)"):
            await conn.execute(SCRATCH_FILL)
        rows = await conn.fetch(READ_PRODUCT.replace("WHERE id = $1", ""))
        state.customer_id = await conn.fetchval(
            "SELECT min(id) FROM user_account WHERE role = 'customer'"
        )
    state.menu = {row["id"]: dict(row) for row in rows}
    for product in state.menu.values():
        await state.redis.set(CACHE_KEY.format(product["id"]), _product(product).model_dump_json())
    yield
    await state.redis.aclose()
    await state.pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None)


def _product(row: dict[str, Any]) -> ProductOut:
    return ProductOut(**{**row, "price": f"{row['price']:.2f}"})


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ok": True}


@app.get("/bare")
async def bare() -> Item:
    return Item(id=1, name="Nebula Noodles", price="12.50", tags=["noodles", "chili"])


@app.get("/pg/products/{product_id}")
async def pg_product(product_id: int) -> ProductOut:
    async with state.pool.acquire() as conn:
        row = await conn.fetchrow(READ_PRODUCT, product_id)
    if row is None:
        raise HTTPException(404)
    return _product(dict(row))


@app.get("/redis/products/{product_id}")
async def redis_product(product_id: int) -> Response:
    raw = await state.redis.get(CACHE_KEY.format(product_id))
    if raw is None:
        raise HTTPException(404)
    return Response(raw, media_type="application/json")


@app.post("/pg/orders", status_code=202)
async def pg_order(body: OrderIn) -> OrderOut:
    """Price the lines from the menu held in memory, insert 1 + N rows in one transaction."""
    lines = []
    for item in body.items:
        product = state.menu.get(item.product_id)
        if product is None:
            raise HTTPException(422)
        price: Decimal = product["price"]
        lines.append((product, item.quantity, price * item.quantity))
    total = sum((line_total for _, _, line_total in lines), Decimal(0))
    first = lines[0][0]
    async with state.pool.acquire() as conn, conn.transaction():
        order_id, _ = await conn.fetchrow(
            INSERT_ORDER,
            first["restaurant_id"],
            state.customer_id,
            "bench customer",
            total,
            first["currency"],
        )
        await conn.executemany(
            INSERT_LINE,
            [
                (
                    order_id,
                    p["id"],
                    p["name"],
                    p["price"],
                    qty,
                    line_total,
                    p["ingredients"],
                    p["allergens"],
                )
                for p, qty, line_total in lines
            ],
        )
    return OrderOut(id=order_id, status="pending", total=f"{total:.2f}")
