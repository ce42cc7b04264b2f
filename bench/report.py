"""The benchmark's table: each figure next to its baseline from the same run, the ratio and
the target; saved as markdown and JSON under bench/results/ with the date and git commit."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import wrk

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parent.parent

# key: (baseline key, minimum ratio)
RATIO_TARGETS = {
    "placement": ("pg_insert", 0.5),
    "product_read": ("redis_read", 0.6),
    "product_list": ("redis_read", 0.3),
}
BIG_P99_OVER_P50 = 3.0


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def build(
    series: dict[str, wrk.Series],
    big: wrk.WrkResult,
    workers: dict[str, Any],
    settings: dict[str, Any],
    labels: dict[str, str] | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for key, s in series.items():
        row: dict[str, Any] = {"key": key, "what": (labels or {}).get(key, key), **s.as_dict()}
        if key in RATIO_TARGETS:
            base_key, minimum = RATIO_TARGETS[key]
            base = series[base_key].median_rps
            ratio = s.median_rps / base if base else None
            base_cpu = series[base_key].median_of("cpu_ms_per_request")
            cpu = s.median_of("cpu_ms_per_request")
            row.update(
                baseline=base_key,
                baseline_rps=round(base, 1),
                ratio=ratio,
                # The same ratio from server CPU per request: what the rate would be with the
                # core to itself, as the noise of a shared machine moves it much less.
                cpu_ratio=base_cpu / cpu if base_cpu and cpu else None,
                target=f">= {minimum} x {base_key}",
                ok=ratio is not None and ratio >= minimum,
            )
        rows.append(row)
    placement = series["placement"].median_rps
    # wrk counts a time-out only for a request older than the time-out while the run lasts:
    # a run not much longer than the time-out cannot show one.
    conclusive = settings.get("BIG_DURATION", 0) >= 2 * settings.get("BIG_TIMEOUT", 0)
    big_ok = (
        big.server_errors == 0
        and big.socket_errors.get("timeout", 0) == 0
        and big.p50_ms is not None
        and big.p99_ms is not None
        and big.p99_ms <= BIG_P99_OVER_P50 * big.p50_ms
    )
    processed = workers.get("processed_per_s")
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": code or commit(),
        "machine": {
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "settings": settings,
        "rows": rows,
        "big": {
            **big.as_dict(),
            "connections": settings.get("BIG_CONNECTIONS"),
            "conclusive": conclusive,
            "ok": big_ok if conclusive or not big_ok else None,
            "target": "no 5xx, no time-out, p99 <= 3 x p50",
        },
        "workers": {
            **workers,
            "baseline": "placement",
            "baseline_rps": round(placement, 1),
            "ratio": processed / placement if processed and placement else None,
            "ok": bool(processed and processed >= placement),
            "target": ">= 1 x placement",
        },
    }


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Commissary benchmark {results['date']} (commit {results['commit']})",
        "",
        f"{results['settings'].get('CONNECTIONS')} connections, "
        f"{results['settings'].get('RUNS')} runs of {results['settings'].get('DURATION')} s "
        "after a warm-up; median req/s, spread = (max - min) / median; CPU = the server "
        "process's CPU time per request (median of the runs), and the ratio of those CPU "
        "figures (baseline / this one); PG CPU = PostgreSQL's, all its processes, which share "
        "the load generator's core.",
        "",
        "| what | req/s | spread | p50 ms | p99 ms | CPU ms/req | PG CPU ms/req | baseline "
        "| ratio | CPU ratio | target | ok |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['what']} | {_num(row['median_rps'])} | {row['spread']:.0%} "
            f"| {_num(row['p50_ms'], 2)} | {_num(row['p99_ms'], 2)} "
            f"| {_num(row.get('cpu_ms_per_request'), 3)} "
            f"| {_num(row.get('db_cpu_ms_per_request'), 3)} "
            f"| {row.get('baseline', '')} | {_num(row.get('ratio'), 2)} "
            f"| {_num(row.get('cpu_ratio'), 2)} "
            f"| {row.get('target', '')} | {_ok(row.get('ok'))} |"
        )
    big = results["big"]
    errors = big["socket_errors"]
    lines.append(
        f"| POST /api/v1/orders @ {big['connections']} connections | {_num(big['rps'])} | – "
        f"| {_num(big['p50_ms'], 2)} | {_num(big['p99_ms'], 2)} | – | – | – "
        f"| p99/p50 {_num(_div(big['p99_ms'], big['p50_ms']), 1)} | – | {big['target']} "
        f"| {_ok(big['ok'])} |"
    )
    w = results["workers"]
    lines.append(
        f"| workers: orders processed/s | {_num(w.get('processed_per_s'))} | – | – | – | – | – "
        f"| placement | {_num(w.get('ratio'), 2)} | – | {w['target']} | {_ok(w.get('ok'))} |"
    )
    lines.append(
        f"| workers: orders final/s | {_num(w.get('final_per_s'))} "
        "| – | – | – | – | – | – | – | – | – | – |"
    )
    lines += [
        "",
        f"At {big['connections']} connections: statuses {big['statuses']}, "
        f"5xx {big['5xx']}, non-2xx {big['non_2xx']}, socket errors {errors}"
        + ("." if big["conclusive"] else " (run shorter than twice the time-out: inconclusive)."),
        f"Workers: {w['orders']} orders placed in {w['placed_in_s']} s with workers stopped, then "
        f"{w['workers']} workers + 1 scheduler; kitchen {w['kitchen']}; first order left "
        f"`pending` {w['startup_s']} s after start, all left `pending` at {w['processed_in_s']} s, "
        f"all final at {w['final_in_s']} s. Rates counted {w.get('rate_basis', '')}.",
        "Error lines and 5xx answers in the servers' logs: "
        f"{results.get('log_problems', 'not counted')}.",
        "",
    ]
    return "\n".join(lines)


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _ok(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "**no**")


def save(results: dict[str, Any], text: str, prefix: str = "") -> list[Path]:
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    stem = RESULTS / f"{prefix}{stamp}_{results['commit']}"
    md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
    md.write_text(text)
    js.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return [md, js]
