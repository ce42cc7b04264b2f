"""The benchmark of DESIGN.md §9, in one run: baselines and the project's hot paths under
wrk, placement at 1,000 connections, and end-to-end worker throughput. Prints a table and
saves it (markdown + JSON) under bench/results/. Run through ``bench/run``."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

import report
import seed
import wrk
from stack import LOAD_CPUS, Stack, raise_open_files_limit


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


DURATION = _env("BENCH_DURATION", 10)
WARMUP = _env("BENCH_WARMUP", 3)
RUNS = int(_env("BENCH_RUNS", 3))
CONNECTIONS = int(_env("BENCH_CONNECTIONS", 64))
BIG_CONNECTIONS = int(_env("BENCH_BIG_CONNECTIONS", 1000))
BIG_DURATION = _env("BENCH_BIG_DURATION", 30)
BIG_TIMEOUT = _env("BENCH_BIG_TIMEOUT", 10)
TIMEOUT = _env("BENCH_TIMEOUT", 5)
HISTORY = int(_env("BENCH_HISTORY", 3000))
CUSTOMERS = int(_env("BENCH_CUSTOMERS", 200))
WORKER_ORDERS = int(_env("BENCH_WORKER_ORDERS", 3000))
WORKERS = int(_env("BENCH_WORKERS", 2))
WORKER_TIMEOUT = _env("BENCH_WORKER_TIMEOUT", 900)
KITCHEN_MIN = os.environ.get("BENCH_KITCHEN_MIN_SECONDS", "0.1")
KITCHEN_MAX = os.environ.get("BENCH_KITCHEN_MAX_SECONDS", "0.5")


@dataclass(frozen=True)
class Target:
    """One wrk measurement: where, and how the request is built (see lua/request.lua)."""

    key: str
    label: str
    server: str  # "baseline" or "api"
    path: str
    body: str | None = None
    tokens: bool = False


def targets(menu: seed.Menu) -> list[Target]:
    product = menu.product_ids[0]
    return [
        Target("bare", "`bare` baseline: FastAPI + Pydantic", "baseline", "/bare"),
        Target(
            "pg_read",
            "`pg_read` baseline: raw asyncpg read by key",
            "baseline",
            f"/pg/products/{product}",
        ),
        Target(
            "pg_insert",
            "`pg_insert` baseline: raw asyncpg order insert, 1+2 rows",
            "baseline",
            "/pg/orders",
            body="order",
        ),
        Target(
            "redis_read",
            "`redis_read` baseline: Redis read",
            "baseline",
            f"/redis/products/{product}",
        ),
        Target(
            "placement",
            "POST /api/v1/orders (2 lines)",
            "api",
            "/api/v1/orders",
            body="order",
            tokens=True,
        ),
        Target("product_read", "GET /api/v1/products/{id}", "api", f"/api/v1/products/{product}"),
        Target("product_list", "GET /api/v1/products?limit=20", "api", "/api/v1/products?limit=20"),
    ]


def wrk_env(target: Target, menu: seed.Menu, tokens_file: Path) -> dict[str, str]:
    env = {
        "BENCH_PRODUCTS": ",".join(map(str, menu.product_ids)),
        "BENCH_RESTAURANT": str(menu.restaurant_id),
    }
    if target.body:
        env["BENCH_BODY"] = target.body
    if target.tokens:
        env["BENCH_TOKENS"] = str(tokens_file)
    return env


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def prepare(stack: Stack, api: str) -> tuple[seed.Menu, list[str]]:
    async with seed.api_client(api) as client:
        say("seeding the menu through the API")
        admin = await seed.admin_login(client, stack.app_env()["ADMIN_EMAIL"])
        menu = await seed.seed_menu(client, admin)
        say(f"creating {CUSTOMERS} verified customers and signing them in")
        emails = await seed.create_accounts(
            client, admin, stack.database_url, "customer", "customer", CUSTOMERS
        )
        tokens = await seed.sign_in(client, emails)
        say(f"seeding {HISTORY} past orders")
        await seed.seed_history(client, stack.database_url, tokens, menu, HISTORY)
    return menu, tokens


async def worker_throughput(
    stack: Stack, api: str, menu: seed.Menu, tokens: list[str]
) -> dict[str, Any]:
    """Place WORKER_ORDERS orders with the workers stopped, then start them and time how fast
    the orders leave `pending` and reach a final state."""
    async with seed.api_client(api) as client:
        started = time.monotonic()
        ids = await seed.place_orders(client, tokens, menu, WORKER_ORDERS)
        placed_in = time.monotonic() - started
    say(f"placed {len(ids)} orders in {placed_in:.1f}s; starting {WORKERS} workers + scheduler")
    conn = await asyncpg.connect(stack.database_url)
    try:
        launched = time.monotonic()
        stack.start_workers(
            WORKERS, KITCHEN_MIN_SECONDS=KITCHEN_MIN, KITCHEN_MAX_SECONDS=KITCHEN_MAX
        )
        first_progress = processed_at = final_at = None
        pending_at_first = final_at_first = len(ids)
        while time.monotonic() - launched < WORKER_TIMEOUT:
            pending, final = await conn.fetchrow(
                """SELECT count(*) FILTER (WHERE status = 'pending'),
                          count(*) FILTER (WHERE status IN ('completed', 'cancelled', 'ready'))
                   FROM customer_order WHERE id = ANY($1::bigint[])""",
                ids,
            )
            now = time.monotonic()
            if first_progress is None and pending < len(ids):
                first_progress, pending_at_first, final_at_first = now, pending, final
            if processed_at is None and pending == 0:
                processed_at = now
            if final == len(ids):
                final_at = now
                break
            for name in [f"worker-{i + 1}" for i in range(WORKERS)]:
                if not stack.alive(name):
                    raise RuntimeError(f"{name} died:\n{stack.log_of(name).read_text()[-3000:]}")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
        stack.stop_workers()

    def rate(done_at: float | None, still: int) -> float | None:
        """Orders per second after the first one seen done; when everything was done by
        then (batches, too few orders), over the whole time from the start, a lower bound."""
        if done_at is None or first_progress is None:
            return None
        if done_at - first_progress >= 0.5:
            return still / (done_at - first_progress)
        return len(ids) / (done_at - launched)

    return {
        "orders": len(ids),
        "placed_in_s": round(placed_in, 2),
        "kitchen": f"simulated, {KITCHEN_MIN}-{KITCHEN_MAX} s",
        "workers": WORKERS,
        "startup_s": round(first_progress - launched, 2) if first_progress else None,
        "processed_in_s": round(processed_at - launched, 2) if processed_at else None,
        "final_in_s": round(final_at - launched, 2) if final_at else None,
        "processed_per_s": rate(processed_at, pending_at_first),
        "rate_basis": (
            "after the first order seen done (worker start-up excluded)"
            if processed_at and first_progress and processed_at - first_progress >= 0.5
            else "from the workers' start (a lower bound: too few orders to time)"
        ),
        "final_per_s": rate(final_at, len(ids) - final_at_first),
        "timed_out": final_at is None,
    }


def measure(
    stack: Stack,
    bases: dict[str, str],
    menu: seed.Menu,
    tokens_file: Path,
    pids: dict[str, int],
) -> dict[str, wrk.Series]:
    """Warm each target up, then RUNS rounds over all targets, interleaved so that a noisy
    moment on the shared machine hits baselines and project alike."""
    plan = targets(menu)
    series = {t.key: wrk.Series() for t in plan}
    for target in plan:
        say(f"warm-up {target.key} ({WARMUP:g}s)")
        result = wrk.run(
            stack,
            bases[target.server] + target.path,
            connections=CONNECTIONS,
            duration=WARMUP,
            timeout=TIMEOUT,
            env=wrk_env(target, menu, tokens_file),
        )
        _check_answers(target, result)
    for round_no in range(1, RUNS + 1):
        for target in plan:
            result = wrk.run(
                stack,
                bases[target.server] + target.path,
                connections=CONNECTIONS,
                duration=DURATION,
                timeout=TIMEOUT,
                env=wrk_env(target, menu, tokens_file),
                server_pid=pids[target.server],
                db_seconds=lambda: stack.cpu_seconds().get("postgres", 0.0),
            )
            say(
                f"run {round_no}/{RUNS} {target.key}: {result.rps:,.0f} req/s "
                f"p50 {result.p50_ms} ms p99 {result.p99_ms} ms non-2xx {result.non_2xx} "
                f"server CPU {result.cpu_ms_per_request} ms/req"
            )
            series[target.key].runs.append(result)
            time.sleep(1)
    return series


def _check_answers(target: Target, result: wrk.WrkResult) -> None:
    """A target answering errors measures nothing: stop loudly."""
    if result.requests and result.non_2xx > result.requests // 2:
        raise RuntimeError(f"{target.key}: mostly errors: {result.statuses}")


def big_run(stack: Stack, api: str, menu: seed.Menu, tokens_file: Path) -> wrk.WrkResult:
    target = next(t for t in targets(menu) if t.key == "placement")
    say(f"placement at {BIG_CONNECTIONS} connections ({BIG_DURATION:g}s)")
    result = wrk.run(
        stack,
        api + target.path,
        connections=BIG_CONNECTIONS,
        duration=BIG_DURATION,
        timeout=BIG_TIMEOUT,
        env=wrk_env(target, menu, tokens_file),
    )
    say(
        f"  {result.rps:,.0f} req/s p50 {result.p50_ms} p99 {result.p99_ms} "
        f"statuses {result.statuses} socket errors {result.socket_errors}"
    )
    return result


def main() -> int:
    raise_open_files_limit()
    code = report.commit()  # the code measured, whatever is committed meanwhile
    if LOAD_CPUS:
        os.sched_setaffinity(0, {int(c) for c in LOAD_CPUS.split(",")})
    settings = {
        k: v for k, v in globals().items() if k.isupper() and isinstance(v, int | float | str)
    }
    with Stack() as stack:
        say(f"work directory {stack.workdir}")
        stack.start_postgres()
        stack.start_redis()
        stack.start_mail_sink()
        stack.commissary("db", "init")
        api = stack.start_api()
        say(f"api at {api} (pid group {stack.procs[-1].popen.pid})")
        menu, tokens = asyncio.run(prepare(stack, api))
        tokens_file = stack.workdir / "tokens.txt"
        tokens_file.write_text("\n".join(tokens) + "\n")
        baseline = stack.start_baseline()
        say(f"baseline app at {baseline}")
        say(f"end-to-end: {WORKER_ORDERS} orders, {WORKERS} workers")
        workers = asyncio.run(worker_throughput(stack, api, menu, tokens))
        say(f"  workers: {workers}")
        pids = {name: stack.pid_of(name) for name in ("api", "baseline")}
        series = measure(stack, {"api": api, "baseline": baseline}, menu, tokens_file, pids)
        big = big_run(stack, api, menu, tokens_file)
        for name in ("api", "baseline"):
            if not stack.alive(name):
                raise RuntimeError(
                    f"{name} died during the run:\n{stack.log_of(name).read_text()[-3000:]}"
                )
        log_problems = stack.log_problems("api", "baseline")
    labels = {t.key: t.label for t in targets(menu)}
    results = report.build(series, big, workers, settings, labels, code)
    results["log_problems"] = log_problems
    text = report.markdown(results)
    print(text)
    paths = report.save(results, text)
    say("saved " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted: everything started was stopped")
        sys.exit(130)
