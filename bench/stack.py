"""The processes a benchmark needs: a throwaway PostgreSQL cluster (fsync on, like
production), Redis, the API, RQ workers, the scheduler and the baseline app.

Every process is started in its own session and remembered, so ``Stack.close`` can stop
each one (and its children) by process group, whatever made the run end: success, an
error, Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))

# Where things run. The API and the baseline app get core 0; load, PostgreSQL and Redis core 1.
API_CPUS = os.environ.get("BENCH_API_CPUS", "0")
LOAD_CPUS = os.environ.get("BENCH_LOAD_CPUS", "1")
WORKER_CPUS = os.environ.get("BENCH_WORKER_CPUS", "0")
# How long a server may take to answer after its start (a busy machine imports slowly).
START_TIMEOUT = float(os.environ.get("BENCH_START_TIMEOUT", "180"))


class StackError(RuntimeError):
    """A server did not come up: the message says which and shows its log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _process_table() -> tuple[dict[int, float], dict[int, list[int]]]:
    """Every process's CPU seconds, its own and its reaped children's (so a PostgreSQL backend
    that ended still counts, in its parent), and the children of each process."""
    tick = os.sysconf("SC_CLK_TCK")
    times: dict[int, float] = {}
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        pid, parent = int(stat.parent.name), int(fields[1])
        times[pid] = sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
        children.setdefault(parent, []).append(pid)
    return times, children


def pinned(cpus: str | None, argv: list[str]) -> list[str]:
    """``argv`` run on the given CPU list (nothing when the list is empty)."""
    return ["taskset", "-c", cpus, *argv] if cpus else argv


def raise_open_files_limit() -> None:
    """1,000 connections on each side need more descriptors than a shell's default."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class Stack:
    """One benchmark's servers. Use as a context manager: leaving it stops everything."""

    workdir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="commissary-bench-"))
    )
    pg_port: int = 0
    redis_port: int = 0
    smtp_port: int = 0
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    procs: list[Proc] = field(default_factory=list)
    # False: nothing is pinned (the production shape shares every core).
    pin: bool = True
    _pg_data: Path | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Stack:
        _install_signal_handlers()
        # bench/run reads this to clean up after a harness that was killed outright.
        state_file = os.environ.get("BENCH_STATE_FILE")
        if state_file:
            Path(state_file).write_text(str(self.workdir))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.procs:
            names = ", ".join(p.name for p in self.procs)
            print(f"stopping {names} and PostgreSQL", file=sys.stderr, flush=True)
        for proc in reversed(self.procs):
            self._terminate(proc)
        self.procs.clear()
        self._record_groups()
        if self._pg_data is not None:
            subprocess.run(
                self._pg(
                    "pg_ctl", "-D", str(self._pg_data), "-m", "fast", "-w", "-t", "30", "stop"
                ),
                check=False,
                capture_output=True,
            )
            self._kill_leftover_postmaster()
            self._pg_data = None
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"logs kept in {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill_leftover_postmaster(self) -> None:
        assert self._pg_data is not None
        pid_file = self._pg_data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

    # -- PostgreSQL and Redis ------------------------------------------------------------

    def _pinned(self, cpus: str | None, argv: list[str]) -> list[str]:
        return pinned(cpus, argv) if self.pin else argv

    @staticmethod
    def _pg(tool: str, *args: str) -> list[str]:
        """A PostgreSQL program, run as the `postgres` user when we are root."""
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return [*run_as, str(PG_BIN / tool), *args]

    def start_postgres(self) -> None:
        """A fresh cluster on a free loopback port, fsync and synchronous commit on."""
        pg_root = self.workdir / "pg"
        pg_root.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres")
            shutil.chown(pg_root, "postgres")
        data = pg_root / "data"
        self.pg_port = free_port()
        _check(
            self._pg("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
            "initdb",
        )
        self._pg_data = data
        options = (
            f"-p {self.pg_port} -k {pg_root} -c listen_addresses=127.0.0.1 "
            "-c fsync=on -c synchronous_commit=on -c max_connections=300 "
            "-c shared_buffers=256MB"
        )
        start = self._pg("pg_ctl", "-D", str(data), "-o", options, "-l", str(pg_root / "log"))
        _check(
            self._pinned(LOAD_CPUS, [*start, "-w", "-t", "60", "start"]),
            "PostgreSQL",
            log=pg_root / "log",
        )
        address = f"-h 127.0.0.1 -p {self.pg_port} -U postgres"
        _check(self._pg("createdb", *address.split(), "commissary"), "createdb")

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/commissary"

    def start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError("redis-server not found (apt-get install redis-server)")
        self.redis_port = free_port()
        options = f"--port {self.redis_port} --bind 127.0.0.1 --appendonly no --maxclients 20000"
        # --save "": no snapshots, the data is thrown away.
        argv = [binary, *options.split(), "--save", ""]
        self.spawn("redis", self._pinned(LOAD_CPUS, argv))
        wait_for_port(self.redis_port, "redis", self)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_mail_sink(self) -> None:
        """An SMTP server that accepts every mail and keeps none, as a mail relay would take
        the staff's order mails off the workers' hands."""
        self.smtp_port = free_port()
        argv = [str(VENV_BIN / "python"), "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
        argv += ["-l", f"127.0.0.1:{self.smtp_port}"]
        self.spawn("smtp", self._pinned(LOAD_CPUS, argv))
        wait_for_port(self.smtp_port, "smtp", self)

    # -- Commissary processes -------------------------------------------------------------

    def app_env(self, **extra: str) -> dict[str, str]:
        """The environment of every Commissary process: production settings, our servers."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
        env.update(
            ENVIRONMENT="production",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            SECRET_KEY=self.secret_key,
            ADMIN_EMAIL="bench-admin@bench.example",
            ADMIN_PASSWORD=ADMIN_PASSWORD,
            # Sign-ins are paced by the harness; every simulated member orders far more often
            # than the per-member placement limit allows a person; tokens must outlive the run.
            LOGIN_MAX_FAILURES_PER_CLIENT="1000000",
            ORDER_RATE_LIMIT="1000000",
            ACCESS_TOKEN_TTL="21600",
            LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        )
        if self.smtp_port:
            env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(self.smtp_port), SMTP_STARTTLS="false")
        env.update(extra)
        return env

    def commissary(self, *args: str) -> None:
        """Run a `commissary` command to completion (e.g. ``db init``)."""
        _check(
            [str(VENV_BIN / "commissary"), *args],
            f"commissary {' '.join(args)}",
            env=self.app_env(),
            cwd=self.workdir,
        )

    def start_api(
        self, name: str = "api", *, workers: int = 1, cpus: str | None = API_CPUS, **env: str
    ) -> str:
        """``commissary serve`` on a free port; returns its base URL once `/ready` answers."""
        port = free_port()
        options = f"--no-migrate --host 127.0.0.1 --port {port} --workers {workers}"
        argv = [str(VENV_BIN / "commissary"), "serve", *options.split()]
        self.spawn(name, self._pinned(cpus, argv), env=self.app_env(**env))
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/ready", name, self)
        return base

    def start_workers(self, count: int, *, scheduler: bool = True, **env: str) -> None:
        for i in range(count):
            self.spawn(
                f"worker-{i + 1}",
                self._pinned(WORKER_CPUS, [str(VENV_BIN / "commissary"), "worker"]),
                env=self.app_env(**env),
            )
        if scheduler:
            self.spawn(
                "scheduler",
                self._pinned(WORKER_CPUS, [str(VENV_BIN / "commissary"), "scheduler"]),
                env=self.app_env(**env),
            )
        time.sleep(1.5)
        for proc in self.procs:
            if proc.popen.poll() is not None:
                raise StackError(f"{proc.name} exited at start:\n{tail(proc.log)}")

    def wait_for_workers(self, count: int) -> None:
        """Return once ``count`` workers have registered with Redis, ready for jobs, and the
        scheduler (when started) has its timetable: their start-up is over."""
        import redis

        client = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + START_TIMEOUT
        scheduler = self.log_of("scheduler") if self.alive("scheduler") else None
        try:
            while client.scard("rq:workers") < count or (
                scheduler is not None and "periodic_job_registered" not in scheduler.read_text()
            ):
                if time.monotonic() > deadline:
                    raise StackError(f"{count} workers and the scheduler not ready in time")
                time.sleep(0.2)
        finally:
            client.close()

    def stop_workers(self) -> None:
        for proc in [p for p in self.procs if p.name.startswith(("worker-", "scheduler"))]:
            self._terminate(proc)
            self.procs.remove(proc)
        self._record_groups()

    def start_baseline(self) -> str:
        """The baseline app (bench/baseline_app.py) under uvicorn, pinned like the API."""
        port = free_port()
        options = f"--host 127.0.0.1 --port {port} --no-access-log --log-level warning"
        app = ["--app-dir", str(ROOT / "bench"), "baseline_app:app"]
        argv = [str(VENV_BIN / "uvicorn"), *app, *options.split()]
        self.spawn("baseline", self._pinned(API_CPUS, argv), env=self.app_env())
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/ready", "baseline", self)
        return base

    # -- process bookkeeping --------------------------------------------------------------

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        self._record_groups()
        return proc

    def _record_groups(self) -> None:
        """Keep the list of live process groups that bench/run kills if this one is killed."""
        (self.workdir / "pgids").write_text("".join(f"{p.popen.pid}\n" for p in self.procs))

    def stop(self, name: str) -> None:
        for proc in [p for p in self.procs if p.name == name]:
            self._terminate(proc)
            self.procs.remove(proc)
        self._record_groups()

    def pid_of(self, name: str) -> int:
        """The process id of ``name`` (one process: taskset execs the server itself)."""
        return next(p.popen.pid for p in self.procs if p.name == name)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each process started here, with all its
        descendants, and by PostgreSQL (the postmaster and every backend)."""
        roots = {p.name: p.popen.pid for p in self.procs if p.popen.poll() is None}
        if self._pg_data is not None:
            with contextlib.suppress(OSError, ValueError):
                pid_file = self._pg_data / "postmaster.pid"
                roots["postgres"] = int(pid_file.read_text().split()[0])
        times, children = _process_table()
        used = {}
        for name, root in roots.items():
            total, todo = 0.0, [root]
            while todo:
                pid = todo.pop()
                total += times.get(pid, 0.0)
                todo += children.get(pid, [])
            used[name] = total
        return used

    def alive(self, name: str) -> bool:
        return any(p.name == name and p.popen.poll() is None for p in self.procs)

    def log_of(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def log_problems(self, *names: str) -> dict[str, int]:
        """Per process: log lines at level error or worse, and requests answered 5xx."""
        counts: dict[str, int] = {}
        for name in names:
            text = (
                self.log_of(name).read_text(errors="replace") if self.log_of(name).exists() else ""
            )
            errors = len(re.findall(r'"level": "(?:error|critical|exception)"', text))
            errors += len(re.findall(r"^(?:ERROR|CRITICAL):", text, re.M))  # plain uvicorn
            server_errors = len(re.findall(r'"status": 5\d\d', text))
            counts[name] = errors + server_errors
        return counts

    @staticmethod
    def _terminate(proc: Proc, grace: float = 8.0) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGTERM)
        try:
            proc.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(5)
        # Children that outlived their leader (uvicorn's worker processes) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)


ADMIN_PASSWORD = "bench-Admin-pass-42"


def _check(
    argv: list[str],
    what: str,
    *,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if result.returncode != 0:
        extra = tail(log) if log else ""
        raise StackError(
            f"{what} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}\n{extra}"
        )


def wait_for_port(port: int, name: str, stack: Stack, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        _fail_if_exited(name, stack)
        time.sleep(0.1)
    raise StackError(
        f"{name} does not listen on {port} after {timeout}s:\n{tail(stack.log_of(name))}"
    )


def wait_for_http(url: str, name: str, stack: Stack, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return
        except Exception as exc:
            last = repr(exc)
        _fail_if_exited(name, stack)
        time.sleep(0.2)
    raise StackError(
        f"{name} not ready at {url} after {timeout}s ({last}):\n{tail(stack.log_of(name))}"
    )


def _fail_if_exited(name: str, stack: Stack) -> None:
    for proc in stack.procs:
        if proc.name == name and proc.popen.poll() is not None:
            raise StackError(f"{name} exited with {proc.popen.returncode}:\n{tail(proc.log)}")


def _install_signal_handlers() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C does, so every ``finally`` stops its servers."""

    def _raise(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)
