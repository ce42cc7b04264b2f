"""The sales report over a large history: `GET /api/v1/orders/report` timed through the API
(p50/p99 ms) with the query plan, at two sizes of history, so the figures show whether the
report stays fast as lines grow. Run through ``bench/run report``.

The history is written straight into PostgreSQL with ``generate_series``: orders of two lines
each at about 400 lines a day (so 1,000,000 lines are about seven years), 200 products under
a few spellings each, one order in 20 cancelled. A report should read the lines of its days
only, so its time follows the days asked for, not the size of the history.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

import report
import seed
from stack import LOAD_CPUS, Stack

SIZES = [int(n) for n in os.environ.get("BENCH_REPORT_LINES", "250000,1000000").split(",")]
REQUESTS = int(os.environ.get("BENCH_REPORT_REQUESTS", "40"))
LINES_PER_DAY = 400  # a busy restaurant: a larger history is a longer one
API = "/api/v1"

ORDERS_SQL = """
INSERT INTO customer_order (restaurant_id, customer_name, status, fulfillment, allergies,
    total, currency, version, order_time, updated_at)
SELECT $1, 'Walk-in ' || n, CASE WHEN n % 20 = 0 THEN 'cancelled' ELSE 'completed' END,
    'dine_in', '[]', 0, 'EUR', 3,
    now() - make_interval(secs => ($3::float8 + random() * ($4::float8 - $3::float8)) * 86400),
    now()
FROM generate_series(1, $2) AS n
RETURNING id
"""
LINES_SQL = """
INSERT INTO order_line (order_id, product_name, unit_price, quantity, line_total,
    ingredients, allergens, options)
SELECT o.id,
    (ARRAY['Flat White ', 'flat white ', 'FLAT WHITE '])[1 + (o.id + k) % 3]
        || ((o.id * 7 + k * 13) % 200) || (ARRAY['', ' '])[1 + o.id % 2],
    2.50 + ((o.id + k) % 200) / 100.0, 1 + (o.id + k) % 3,
    (2.50 + ((o.id + k) % 200) / 100.0) * (1 + (o.id + k) % 3), '[]', '[]', '[]'
FROM customer_order o, generate_series(0, 1) AS k
WHERE o.id > $1
"""


def say(message: str) -> None:
    print(f"[report] {message}", file=sys.stderr, flush=True)


async def grow(dsn: str, restaurant_id: int, lines: int) -> None:
    """Add orders (two lines each) until the history holds ``lines`` lines."""
    db = await asyncpg.connect(dsn)
    try:
        have = int(await db.fetchval("SELECT count(*) FROM order_line"))
        orders = max(0, (lines - have) // 2)
        last = int(await db.fetchval("SELECT coalesce(max(id), 0) FROM customer_order"))
        async with db.transaction():
            # Older days: the history grows backwards, each day as busy as the others.
            since, until = have / LINES_PER_DAY, lines / LINES_PER_DAY
            sql = ORDERS_SQL.replace("RETURNING id", "")
            await db.execute(sql, restaurant_id, orders, since, until)
            await db.execute(LINES_SQL, last)
        await db.execute("ANALYZE customer_order")
        await db.execute("ANALYZE order_line")
    finally:
        await db.close()


async def restaurant(dsn: str) -> int:
    db = await asyncpg.connect(dsn)
    try:
        return int(
            await db.fetchval(
                "INSERT INTO restaurant (name, slug, description, address, phone, timezone, "
                "opening_hours, kitchen_mode, is_active, created_at, updated_at) VALUES "
                "('Report Bistro', 'report-bistro', '', '', '', 'Europe/Paris', '{}', "
                "'manual', true, now(), now()) RETURNING id"
            )
        )
    finally:
        await db.close()


async def timed(api: str, token: str, params: dict[str, str]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:
        first = await client.get(f"{API}/orders/report", params=params, headers=headers)
        first.raise_for_status()
        times = []
        for _ in range(REQUESTS):
            start = time.perf_counter()
            answer = await client.get(f"{API}/orders/report", params=params, headers=headers)
            times.append((time.perf_counter() - start) * 1000)
            answer.raise_for_status()
    times.sort()
    body = first.json()
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 1),
        "products": len(body["items"]),
        "units": body["total_quantity"],
    }


async def plan(dsn: str, restaurant_id: int, days: int) -> str:
    """EXPLAIN ANALYZE of the report's own statement for the last ``days`` days."""
    from sqlalchemy.dialects import postgresql

    from commissary.models import Order
    from commissary.orders.report import aggregate

    end = dt.datetime.now(dt.UTC)
    where = [
        Order.restaurant_id == restaurant_id,
        Order.order_time >= end - dt.timedelta(days=days),
        Order.order_time < end,
    ]
    dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
    compiled = aggregate(where).compile(dialect=dialect)
    args = [compiled.params[name] for name in compiled.positiontup or ()]
    args = [a.value if isinstance(a, enum.Enum) else a for a in args]
    db = await asyncpg.connect(dsn)
    try:
        rows = await db.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {compiled.string}", *args)
    finally:
        await db.close()
    return "\n".join(row[0] for row in rows)


async def measure(stack: Stack, api: str) -> list[dict[str, Any]]:
    dsn = stack.database_url
    place = await restaurant(dsn)
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:
        token = await seed.admin_login(client, stack.app_env()["ADMIN_EMAIL"])
    today = dt.date.today()
    ranges = {
        "last 30 days (default)": {},
        "last 30 days, one restaurant": {"restaurant_id": str(place)},
        "last 366 days": {
            "start_date": (today - dt.timedelta(days=365)).isoformat(),
            "end_date": today.isoformat(),
        },
    }
    results = []
    for size in SIZES:
        say(f"history of {size:,} lines")
        await grow(dsn, place, size)
        for label, params in ranges.items():
            figures = await timed(api, token, params)
            say(f"  {label}: {figures}")
            results.append({"lines": size, "range": label, **figures})
        results[-1]["plan_30_days"] = await plan(dsn, place, 30)
    return results


def markdown(results: list[dict[str, Any]], code: str) -> str:
    out = [
        f"# Sales report over a large history ({code}, {dt.datetime.now(dt.UTC):%Y-%m-%d})",
        "",
        f"{REQUESTS} sequential requests per row, through the API.",
        "",
        "| history (lines) | range | p50 ms | p99 ms | products | units |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    out += [
        f"| {r['lines']:,} | {r['range']} | {r['p50_ms']} | {r['p99_ms']} | {r['products']} "
        f"| {r['units']:,} |"
        for r in results
    ]
    for r in results:
        if "plan_30_days" in r:
            out += [
                "",
                f"Plan, last 30 days, {r['lines']:,} lines:",
                "",
                "```",
                r["plan_30_days"],
                "```",
            ]
    return "\n".join(out) + "\n"


def main() -> int:
    code = report.commit()
    if LOAD_CPUS:
        os.sched_setaffinity(0, {int(c) for c in LOAD_CPUS.split(",")})
    with Stack() as stack:
        stack.start_postgres()
        stack.start_redis()
        stack.commissary("db", "init")
        api = stack.start_api()
        results = asyncio.run(measure(stack, api))
    text = markdown(results, code)
    print(text)
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    stamp = f"sales_report_{dt.datetime.now(dt.UTC):%Y-%m-%dT%H%M%SZ}_{code}"
    (folder / f"{stamp}.md").write_text(text)
    (folder / f"{stamp}.json").write_text(json.dumps(results, indent=2))
    say(f"saved bench/results/{stamp}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
