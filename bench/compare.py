"""Placement's CPU per order, for several revisions of the code side by side, on the same
data and machine, measured alternately (see bench/README.md, `bench/run compare`).

The way to tell whether one change to the hot path helps: on a shared machine a figure from
one day says little about another's, and even `bench/run`'s ratios move by 10 %. Here every
revision serves the same PostgreSQL and Redis from its own api process (one at a time on the
api core), and short wrk windows go round-robin over the raw-insert baseline and each
revision, so a busy moment hits them all. Reported per revision: the median over the rounds
of the api process's CPU time per answered placement, the median req/s, and both as ratios
to the baseline.

    bench/run compare HEAD~3 HEAD         # or any git revisions; the work tree as `.`

The revisions must share the database schema (the same migrations): the database is made
once, by this checkout's `commissary db init`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
import report
import wrk
from stack import API_CPUS, LOAD_CPUS, ROOT, VENV_BIN, Stack, free_port, pinned, wait_for_http

MIGRATIONS = "src/commissary/migrations/versions"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def export(revision: str, into: Path) -> Path:
    """The `src/` of ``revision`` (``.``: the work tree as it is), as a directory."""
    if revision == ".":
        return ROOT / "src"
    target = into / git("rev-parse", "--short=12", revision)
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", revision, "src"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "src"


def migrations(revision: str) -> list[str]:
    if revision == ".":
        return sorted(p.name for p in (ROOT / MIGRATIONS).glob("*.py"))
    listing = git("ls-tree", "--name-only", f"{revision}:{MIGRATIONS}")
    return sorted(name for name in listing.splitlines() if name.endswith(".py"))


def start_api(stack: Stack, name: str, source: Path) -> tuple[str, int]:
    """``commissary serve`` running ``source`` (first on the import path), on the api core."""
    port = free_port()
    argv = [str(VENV_BIN / "commissary"), "serve", "--no-migrate", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", "1"]
    proc = stack.spawn(name, pinned(API_CPUS, argv), env=stack.app_env(PYTHONPATH=str(source)))
    base = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base}/ready", name, stack)
    return base, proc.popen.pid


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/run compare", description=__doc__.split("\n")[0])
    parser.add_argument("revisions", nargs="+", help="git revisions; `.` is the work tree")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one window")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    schemas = {revision: migrations(revision) for revision in args.revisions}
    if len({tuple(m) for m in [*schemas.values(), migrations(".")]}) > 1:
        say("the revisions do not share this checkout's migrations: compare them elsewhere")
        return 2
    if LOAD_CPUS:
        os.sched_setaffinity(0, {int(c) for c in LOAD_CPUS.split(",")})
    names = {
        r: report.commit() if r == "." else git("rev-parse", "--short=12", r)
        for r in args.revisions
    }
    with tempfile.TemporaryDirectory(prefix="commissary-compare-") as scratch, Stack() as stack:
        sources = {revision: export(revision, Path(scratch)) for revision in args.revisions}
        stack.start_postgres()
        stack.start_redis()
        stack.start_mail_sink()
        stack.commissary("db", "init")
        seeding = stack.start_api("seeding")
        menu, tokens = asyncio.run(harness.prepare(stack, seeding))
        stack.stop("seeding")
        tokens_file = stack.workdir / "tokens.txt"
        tokens_file.write_text("\n".join(tokens) + "\n")
        baseline = stack.start_baseline()
        apis = {r: start_api(stack, f"api-{i}", sources[r]) for i, r in enumerate(args.revisions)}
        plan = {t.key: t for t in harness.targets(menu)}
        insert, placement = plan["pg_insert"], plan["placement"]
        windows: dict[str, list[wrk.WrkResult]] = {r: [] for r in ["baseline", *args.revisions]}

        def window(url: str, target: Any, pid: int | None, seconds: float) -> wrk.WrkResult:
            env = harness.wrk_env(target, menu, tokens_file)
            return wrk.run(
                stack, url, connections=args.connections, duration=seconds, env=env, server_pid=pid
            )

        for revision, (base, _) in apis.items():
            say(f"warm-up {names[revision]}")
            window(base + placement.path, placement, None, 3)
        for round_no in range(1, args.rounds + 1):
            found = window(baseline + insert.path, insert, stack.pid_of("baseline"), args.seconds)
            windows["baseline"].append(found)
            for revision, (base, pid) in apis.items():
                result = window(base + placement.path, placement, pid, args.seconds)
                if result.non_2xx:
                    raise RuntimeError(f"{names[revision]} answered {result.statuses}")
                windows[revision].append(result)
            say(f"round {round_no}/{args.rounds} done")
    text = table(windows, names, args)
    print(text)
    report.RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    path = report.RESULTS / f"compare_{stamp}.md"
    path.write_text(text)
    say(f"saved {path}")
    return 0


def table(
    windows: dict[str, list[wrk.WrkResult]], names: dict[str, str], args: argparse.Namespace
) -> str:
    def medians(results: list[wrk.WrkResult]) -> tuple[float, float, float]:
        cpu = statistics.median(r.cpu_ms_per_request or 0.0 for r in results)
        rates = [r.rps for r in results]
        spread = (max(rates) - min(rates)) / statistics.median(rates)
        return cpu, statistics.median(rates), spread

    base_cpu, base_rps, base_spread = medians(windows["baseline"])
    lines = [
        f"Placement, {args.rounds} rounds of {args.seconds:g} s at {args.connections} "
        "connections; medians.",
        "",
        "| code | CPU ms/order | req/s | spread | ratio (CPU) | ratio (req/s) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| raw asyncpg order insert (baseline) | {base_cpu:.3f} | {base_rps:,.0f} "
        f"| {base_spread:.0%} | | |",
    ]
    for revision, results in windows.items():
        if revision == "baseline":
            continue
        cpu, rps, spread = medians(results)
        lines.append(
            f"| `{names[revision]}` | {cpu:.3f} | {rps:,.0f} | {spread:.0%} "
            f"| {base_cpu / cpu:.2f} | {rps / base_rps:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted: everything started was stopped")
        sys.exit(130)
