"""The waiters' brief as a load scenario: many users constantly creating orders against the
production shape (2 api processes, 2 RQ workers, 1 scheduler, PostgreSQL, Redis), then a
check in SQL that every accepted order exists once and reached a final state in time.

Users are waiters keying in orders for walk-ins (``customer_name``) and verified customers
ordering for themselves. Each signs in once (paced, before the load starts), then loops:
read the menu, read one product, place an order, wait 1-5 s. Run through
``bench/run waiters``; ``--help`` lists the knobs."""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import multiprocessing
import os
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import asyncpg

import report
import seed
from lightclient import Answer, Connection
from stack import Stack, raise_open_files_limit

FINAL = ("completed", "cancelled", "ready")
API = seed.API


@dataclass
class User:
    email: str
    role: str  # "waiter" or "customer"
    token: str = ""


@dataclass
class Stats:
    placement_ms: list[float] = field(default_factory=list)
    menu_ms: list[float] = field(default_factory=list)
    accepted: list[tuple[int, float]] = field(default_factory=list)  # (order id, epoch s)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    reads: int = 0
    client_cpu_s: float = 0.0  # CPU time the load generator's processes used

    def merge(self, other: Stats) -> None:
        self.placement_ms += other.placement_ms
        self.menu_ms += other.menu_ms
        self.accepted += other.accepted
        self.errors.update(other.errors)
        self.reads += other.reads
        self.client_cpu_s += other.client_cpu_s


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=120.0, help="load window, seconds")
    parser.add_argument("--waiter-share", type=float, default=0.3)
    parser.add_argument("--min-pause", type=float, default=1.0)
    parser.add_argument("--max-pause", type=float, default=5.0)
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--history", type=int, default=3000, help="past orders seeded")
    parser.add_argument("--sign-in-concurrency", type=int, default=8)
    parser.add_argument("--final-within", type=float, default=10.0, help="seconds")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=30.0, help="client time-out, seconds")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=2,
        help="load generator processes, the users shared among them",
    )
    return parser.parse_args()


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def error_kind(answer: Answer) -> str:
    code = ""
    if answer.content_type.startswith("application/problem+json"):
        code = str(answer.json().get("code", ""))
    return f"HTTP {answer.status} {code}".strip()


async def user_loop(
    conn: Connection,
    user: User,
    menu: seed.Menu,
    stats: Stats,
    deadline: float,
    args: argparse.Namespace,
) -> None:
    headers = seed.bearer(user.token)
    await asyncio.sleep(random.uniform(0, args.max_pause))
    table = 0
    menu_path = f"{API}/products?" + urlencode({"restaurant_id": menu.restaurant_id, "limit": 20})
    try:
        while time.monotonic() < deadline:
            await _read(conn, menu_path, stats)
            await _read(conn, f"{API}/products/{random.choice(menu.product_ids)}", stats)
            first, second = random.choice(menu.product_ids), random.choice(menu.product_ids)
            body: dict[str, Any] = {
                "restaurant_id": menu.restaurant_id,
                "items": [
                    {"product_id": first, "quantity": random.randint(1, 3)},
                    {"product_id": second, "quantity": 1},
                ],
            }
            if user.role == "waiter":
                table += 1
                body["customer_name"] = f"Table {table} ({user.email.split('@')[0]})"
                if random.random() < 0.1:
                    body["allergies"] = [seed.ALLERGIC_TO]
            started = time.perf_counter()
            try:
                answer = await conn.request("POST", f"{API}/orders", body=body, headers=headers)
            except Exception as exc:
                stats.errors[f"placement {type(exc).__name__}"] += 1
            else:
                stats.placement_ms.append((time.perf_counter() - started) * 1000)
                if answer.status == 202:
                    stats.accepted.append((int(answer.json()["id"]), time.time()))
                else:
                    stats.errors[f"placement {error_kind(answer)}"] += 1
            await asyncio.sleep(random.uniform(args.min_pause, args.max_pause))
    finally:
        conn.close()


async def _read(conn: Connection, path: str, stats: Stats) -> None:
    started = time.perf_counter()
    try:
        answer = await conn.request("GET", path)
    except Exception as exc:
        stats.errors[f"menu {type(exc).__name__}"] += 1
        return
    stats.menu_ms.append((time.perf_counter() - started) * 1000)
    stats.reads += 1
    if answer.status != 200:
        stats.errors[f"menu {error_kind(answer)}"] += 1


def load_share(
    api: str, users: list[User], menu: seed.Menu, start_at: float, args: argparse.Namespace
) -> Stats:
    """One load generator process: its share of the users, each on a keep-alive connection of
    its own, from the wall-clock time ``start_at`` for ``args.duration`` seconds."""
    import uvloop

    address = urlsplit(api)
    host, port = address.hostname or "127.0.0.1", address.port or 80

    async def run() -> Stats:
        stats = Stats()
        await asyncio.sleep(max(0.0, start_at - time.time()))
        deadline = time.monotonic() + args.duration
        limit = args.timeout
        loops = [
            user_loop(Connection(host, port, time_limit=limit), u, menu, stats, deadline, args)
            for u in users
        ]
        await asyncio.gather(*loops)
        return stats

    cpu_before = time.process_time()
    stats = uvloop.run(run())
    stats.client_cpu_s = time.process_time() - cpu_before
    return stats


async def generate_load(
    api: str, users: list[User], menu: seed.Menu, args: argparse.Namespace
) -> tuple[Stats, float]:
    """The users' loops in ``--client-processes`` processes, started together; returns the
    merged figures and the load window in seconds."""
    processes = max(1, min(args.client_processes, len(users)))
    shares = [users[i::processes] for i in range(processes)]
    start_at = time.time() + 3.0  # every process imported and ready by then
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [
            loop.run_in_executor(pool, load_share, api, share, menu, start_at, args)
            for share in shares
        ]
        results = await asyncio.gather(*futures)
    window = time.time() - start_at
    stats = Stats()
    for part in results:
        stats.merge(part)
    return stats, window


def percentiles(values: list[float]) -> dict[str, float | None]:
    if len(values) < 2:
        return {"p50": values[0] if values else None, "p95": None, "p99": None}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "p99": round(cuts[98], 1)}


async def check_orders(
    database_url: str, stats: Stats, first_id: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Wait until every accepted order is final (or the drain time-out), then count lost,
    duplicated, unacknowledged, final and late orders."""
    ids = [order_id for order_id, _ in stats.accepted]
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            not_final = await conn.fetchval(
                "SELECT count(*) FROM customer_order WHERE id = ANY($1::bigint[]) "
                "AND status <> ALL($2::text[])",
                ids,
                list(FINAL),
            )
            if not_final == 0:
                break
            await asyncio.sleep(1)
        rows = await conn.fetch(
            """SELECT o.id, o.status, o.order_time,
                      (SELECT min(e.created_at) FROM order_event e
                        WHERE e.order_id = o.id AND e.to_status = ANY($2::text[])) AS final_at
               FROM customer_order o WHERE o.id = ANY($1::bigint[])""",
            ids,
            list(FINAL),
        )
        unacknowledged = await conn.fetchval(
            "SELECT count(*) FROM customer_order WHERE id >= $1 AND id <> ALL($2::bigint[])",
            first_id,
            ids,
        )
    finally:
        await conn.close()
    counts = collections.Counter(ids)
    found = {row["id"]: row for row in rows}
    final = [row for row in rows if row["status"] in FINAL]
    took = [(row["final_at"] - row["order_time"]).total_seconds() for row in final]
    late = [t for t in took if t > args.final_within]
    return {
        "accepted": len(ids),
        "accepted_distinct": len(counts),
        "duplicated_ids": sum(1 for n in counts.values() if n > 1),
        "lost": sum(1 for order_id in counts if order_id not in found),
        "final": len(final),
        "not_final": len(found) - len(final),
        "by_status": dict(collections.Counter(row["status"] for row in rows)),
        "final_within_limit": len(took) - len(late),
        "late": len(late),
        "acceptance_to_final_s": percentiles(took),
        # Orders stored although the client saw no 202 (e.g. a client time-out after commit).
        "unacknowledged": unacknowledged,
    }


async def scenario(stack: Stack, api: str, args: argparse.Namespace) -> dict[str, Any]:
    waiters = round(args.users * args.waiter_share)
    customers = args.users - waiters
    async with seed.api_client(api, connections=args.users + 10, timeout=args.timeout) as client:
        say("seeding the menu through the API")
        admin = await seed.admin_login(client, stack.app_env()["ADMIN_EMAIL"])
        menu = await seed.seed_menu(client, admin)
        db = stack.database_url
        customer_emails = await seed.create_accounts(
            client, admin, db, "customer", "customer", customers, allergic_share=0.1
        )
        waiter_emails = await seed.create_accounts(
            client,
            admin,
            db,
            "waiter",
            "waiter",
            waiters,
            restaurant_ids=[menu.restaurant_id, menu.other_restaurant_id],
        )
        users = [User(e, "customer") for e in customer_emails]
        users += [User(e, "waiter") for e in waiter_emails]
        say(
            f"signing in {len(users)} users ({waiters} waiters), {args.sign_in_concurrency} at once"
        )
        started = time.monotonic()
        tokens = await seed.sign_in(
            client, [u.email for u in users], concurrency=args.sign_in_concurrency
        )
        sign_in_s = time.monotonic() - started
        for user, token in zip(users, tokens, strict=True):
            user.token = token
        say(f"signed in in {sign_in_s:.1f}s; seeding {args.history} past orders")
        customer_tokens = [u.token for u in users if u.role == "customer"] or tokens
        await seed.seed_history(client, stack.database_url, customer_tokens, menu, args.history)
        first_id = await _next_order_id(stack.database_url)
        stack.start_workers(args.workers)
        stack.wait_for_workers(args.workers)
    say(
        f"{args.workers} workers + scheduler up; load for {args.duration:g}s from "
        f"{args.client_processes} client processes"
    )
    cpu_before, busy_before = stack.cpu_seconds(), machine_busy_seconds()
    stats, window = await generate_load(api, users, menu, args)
    cpu_after, busy_after = stack.cpu_seconds(), machine_busy_seconds()
    say(f"load done ({window:.1f}s); waiting for the workers, then checking in SQL")
    check = await check_orders(stack.database_url, stats, first_id, args)
    for name in [f"worker-{i + 1}" for i in range(args.workers)] + ["scheduler", "api"]:
        if not stack.alive(name):
            raise RuntimeError(f"{name} died during the run:\n{stack.log_of(name).read_text()}")
    workers = [f"worker-{i + 1}" for i in range(args.workers)]
    return {
        "log_problems": stack.log_problems("api", *workers, "scheduler"),
        "users": len(users),
        "waiters": waiters,
        "sign_in_s": round(sign_in_s, 1),
        "window_s": round(window, 1),
        "orders_accepted": len(stats.accepted),
        "orders_accepted_per_s": round(len(stats.accepted) / window, 1),
        "menu_reads": stats.reads,
        "placement_ms": percentiles(stats.placement_ms),
        "menu_ms": percentiles(stats.menu_ms),
        "client_processes": args.client_processes,
        # Share of one core the load generator used over the window (all its processes).
        "client_cpu_share": round(stats.client_cpu_s / window, 2),
        # Share of one core each server used over the window, with its child processes.
        "server_cpu_share": {
            name: round((cpu_after[name] - cpu_before.get(name, 0.0)) / window, 2)
            for name in cpu_after
        },
        # Cores the whole machine kept busy over the window, of os.cpu_count().
        "machine_busy_cores": round((busy_after - busy_before) / window, 2),
        "cores": os.cpu_count(),
        "errors": dict(stats.errors),
        "check": check,
    }


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all but idle and I/O wait), from /proc."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def _next_order_id(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(id), 0) + 1 FROM customer_order"))
    finally:
        await conn.close()


def verdict(result: dict[str, Any]) -> dict[str, bool]:
    check = result["check"]
    p99 = result["placement_ms"]["p99"]
    return {
        "no errors": not result["errors"],
        "none lost": check["lost"] == 0,
        "none duplicated": check["duplicated_ids"] == 0 and check["unacknowledged"] == 0,
        "every order final": check["not_final"] == 0 and check["final"] == check["accepted"],
        "final within limit": check["late"] == 0,
        "placement p99 <= 250 ms": p99 is not None and p99 <= 250,
    }


def markdown(result: dict[str, Any], args: argparse.Namespace) -> str:
    check = result["check"]
    lines = [
        f"# Waiters' scenario {result['date']} (commit {result['commit']})",
        "",
        f"{result['users']} users ({result['waiters']} waiters), an order every "
        f"{args.min_pause:g}-{args.max_pause:g} s each, {result['window_s']} s; "
        f"{args.api_processes} api processes, {args.workers} workers, 1 scheduler; "
        f"simulated kitchen (1-5 s). Sign-in of all users took {result['sign_in_s']} s.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| orders accepted | {result['orders_accepted']} ({result['orders_accepted_per_s']}/s) |",
        f"| placement p50 / p95 / p99 ms | {_p(result['placement_ms'])} |",
        f"| menu reads | {result['menu_reads']} |",
        f"| menu read p50 / p95 / p99 ms | {_p(result['menu_ms'])} |",
        f"| errors | {result['errors'] or 'none'} |",
        f"| load generator | {result['client_processes']} processes, "
        f"{result['client_cpu_share']:.0%} of one core over the window |",
        f"| CPU over the window, cores (ms per accepted order) | {_cpu(result)} |",
        f"| whole machine busy | {result['machine_busy_cores']} of {result['cores']} cores |",
        f"| error lines and 5xx answers in server logs | {result['log_problems']} |",
        f"| lost / duplicated ids / unacknowledged | {check['lost']} / "
        f"{check['duplicated_ids']} / {check['unacknowledged']} |",
        f"| final / not final | {check['final']} / {check['not_final']} {check['by_status']} |",
        f"| final within {args.final_within:g} s / late | {check['final_within_limit']} / "
        f"{check['late']} |",
        f"| acceptance to final p50 / p95 / p99 s | {_p(check['acceptance_to_final_s'])} |",
        "",
        "| target | met |",
        "|---|---|",
        *(f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in result["verdict"].items()),
        "",
    ]
    return "\n".join(lines)


def _cpu(result: dict[str, Any]) -> str:
    """Each server's share of a core and its CPU per accepted order, the load generator last."""
    shares = {**result["server_cpu_share"], "load generator": result["client_cpu_share"]}
    per_order = result["window_s"] * 1000 / max(result["orders_accepted"], 1)
    return ", ".join(
        f"{name} {share:.2f} ({share * per_order:.2f})" for name, share in shares.items()
    )


def _p(values: dict[str, float | None]) -> str:
    return " / ".join("-" if values[k] is None else f"{values[k]}" for k in ("p50", "p95", "p99"))


def main() -> int:
    raise_open_files_limit()
    args = arguments()
    code = report.commit()  # the code measured, whatever is committed meanwhile
    with Stack(pin=False) as stack:
        say(f"work directory {stack.workdir}")
        stack.start_postgres()
        stack.start_redis()
        stack.start_mail_sink()
        stack.commissary("db", "init")
        api = stack.start_api(workers=args.api_processes)
        say(f"api ({args.api_processes} processes) at {api}")
        result = asyncio.run(scenario(stack, api, args))
    result.update(
        date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        commit=code,
        settings=vars(args),
    )
    result["verdict"] = verdict(result)
    text = markdown(result, args)
    print(text)
    paths = report.save(result, text, prefix="waiters_")
    say("saved " + ", ".join(str(p) for p in paths))
    return 0 if all(result["verdict"].values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted: everything started was stopped")
        sys.exit(130)
