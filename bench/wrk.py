"""Running wrk (pinned to the load core) and reading its report."""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stack import LOAD_CPUS, Stack, pinned

SCRIPT = Path(__file__).resolve().parent / "lua" / "request.lua"
THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class WrkResult:
    rps: float
    requests: int
    p50_ms: float | None
    p99_ms: float | None
    statuses: dict[str, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    # CPU time (user + system) the server process spent per answered request during the run.
    cpu_ms_per_request: float | None = None
    # The same for PostgreSQL (the postmaster and every backend), which shares the load's core.
    db_cpu_ms_per_request: float | None = None

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not code.startswith("2"))

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code.startswith("5"))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "non_2xx": self.non_2xx, "5xx": self.server_errors}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(
    stack: Stack,
    url: str,
    *,
    connections: int,
    duration: float,
    timeout: float = 5.0,
    env: dict[str, str] | None = None,
    server_pid: int | None = None,
    db_seconds: Callable[[], float] | None = None,
) -> WrkResult:
    """One wrk run; raises when wrk itself fails (not when the server answers errors). With
    ``server_pid``, also the server's CPU time per request over the run: a figure that moves
    much less than req/s on a shared machine, since it does not count time spent waiting.
    With ``db_seconds`` (the database's CPU seconds so far), the database's CPU per request."""
    argv = pinned(
        LOAD_CPUS,
        [
            "wrk",
            f"-t{min(THREADS, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            f"--timeout={timeout:g}s",
            "--latency",
            "-s",
            str(SCRIPT),
            url,
        ],
    )
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    db_before = db_seconds() if db_seconds else 0.0
    proc = stack.spawn("wrk", argv, env={**os.environ, **(env or {})})
    log = proc.log
    try:
        proc.popen.wait(duration + timeout + 60)
    finally:
        stack.stop("wrk")
    cpu = cpu_seconds(server_pid) - cpu_before if server_pid else None
    db_cpu = db_seconds() - db_before if db_seconds else None
    output = log.read_text(errors="replace")
    log.unlink(missing_ok=True)
    if proc.popen.returncode != 0 or "Requests/sec" not in output:
        raise RuntimeError(f"wrk failed ({proc.popen.returncode}):\n{output}")
    result = parse(output)
    if cpu is not None and result.requests:
        result.cpu_ms_per_request = round(cpu * 1000 / result.requests, 3)
    if db_cpu is not None and result.requests:
        result.db_cpu_ms_per_request = round(db_cpu * 1000 / result.requests, 3)
    return result


def parse(output: str) -> WrkResult:
    rps = float(_search(r"Requests/sec:\s+([\d.]+)", output) or 0)
    requests = int(_search(r"(\d+) requests in", output) or 0)
    statuses = {m[0]: int(m[1]) for m in re.findall(r"^STATUS (\d+) (\d+)$", output, re.M)}
    errors: dict[str, int] = {}
    found = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if found:
        errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, found.groups()), strict=True)
        )
    return WrkResult(
        rps=rps,
        requests=requests,
        p50_ms=_latency(output, "50%"),
        p99_ms=_latency(output, "99%"),
        statuses=statuses,
        socket_errors=errors,
    )


def _search(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text)
    return found.group(1) if found else None


def _latency(output: str, percentile: str) -> float | None:
    found = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    return float(found.group(1)) * _UNITS[found.group(2)] if found else None


@dataclass
class Series:
    """Repeated runs of one measurement: the median and the spread of their rates."""

    runs: list[WrkResult] = field(default_factory=list)

    @property
    def median_rps(self) -> float:
        return statistics.median(r.rps for r in self.runs) if self.runs else 0.0

    @property
    def spread(self) -> float:
        """(max - min) / median of the runs' rates."""
        if len(self.runs) < 2 or not self.median_rps:
            return 0.0
        rates = [r.rps for r in self.runs]
        return (max(rates) - min(rates)) / self.median_rps

    def median_of(self, attr: str) -> float | None:
        values = [getattr(r, attr) for r in self.runs if getattr(r, attr) is not None]
        return statistics.median(values) if values else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_rps": round(self.median_rps, 1),
            "spread": round(self.spread, 3),
            "p50_ms": self.median_of("p50_ms"),
            "p99_ms": self.median_of("p99_ms"),
            "cpu_ms_per_request": self.median_of("cpu_ms_per_request"),
            "db_cpu_ms_per_request": self.median_of("db_cpu_ms_per_request"),
            "non_2xx": sum(r.non_2xx for r in self.runs),
            "runs": [r.as_dict() for r in self.runs],
        }
