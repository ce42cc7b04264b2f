"""The `commissary` console script, run as a real subprocess on a SQLite file with a clean
environment (no inherited configuration, no `.env`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main
from typer.testing import CliRunner

from commissary.config import Settings
from commissary.core import migrate
from tests.servers import free_port

COMMISSARY = shutil.which("commissary", path=os.path.dirname(sys.executable))
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "kitchen-boss-77"
HEAD = migrate.head()

pytestmark = pytest.mark.skipif(COMMISSARY is None, reason="the commissary script is not installed")

_CONFIG_VARS = {name.upper() for name in Settings.model_fields}


def clean_env(db: Path, **extra: str) -> dict[str, str]:
    """The inherited environment minus any Commissary setting, pointed at ``db``."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in _CONFIG_VARS}
    env.update(COLUMNS="200", NO_COLOR="1", DATABASE_URL=f"sqlite:///{db}", **extra)
    return env


def run(
    cwd: Path, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    assert COMMISSARY is not None
    return subprocess.run(
        [COMMISSARY, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tables_of(db: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def user_roles(db: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT email, role FROM user_account").fetchall()
    return {email: role.lower() for email, role in rows}


def revision_of(db: Path) -> str | None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve(cwd: Path, env: dict[str, str], *args: str) -> Iterator[Server]:
    """`commissary serve` on a free port, once /health answers; terminated afterwards."""
    assert COMMISSARY is not None
    port = free_port()
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [COMMISSARY, "serve", "--port", str(port), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve exited with {process.returncode}:\n{server.output()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.base_url}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not answer /health:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def login(base_url: str, email: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=10
    )


def me(base_url: str, access_token: str) -> httpx.Response:
    return httpx.get(
        f"{base_url}/api/v1/users/me",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=10,
    )


# --- help ---------------------------------------------------------------------------------


def _registered_commands() -> dict[tuple[str, ...], list[str]]:
    """Every command and sub-command of the app, with the options, arguments and
    sub-commands its help must list."""
    from commissary.cli import app

    found: dict[tuple[str, ...], list[str]] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        names = [
            name
            for param in command.params
            if not getattr(param, "hidden", False)
            for name in (*param.opts, *param.secondary_opts)
        ]
        subcommands = getattr(command, "commands", {})
        found[path] = names + list(subcommands)
        for name, sub in subcommands.items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


REGISTERED = _registered_commands()

# What the help of the commands we document must say, beyond their own option names.
HELP_EXPECTATIONS: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("serve", "worker", "scheduler", "db", "users"),
    ("serve",): ("--host", "--port", "--workers", "--reload", "--migrate", "--no-migrate"),
    ("worker",): ("--burst", "REDIS_URL"),
    ("scheduler",): ("REDIS_URL",),
    ("db",): ("init", "upgrade", "downgrade", "status", "reset", "create-migration"),
    ("db", "init"): ("ADMIN_EMAIL", "ADMIN_PASSWORD"),
    ("db", "upgrade"): ("revision", "head"),
    ("db", "downgrade"): ("revision", "base"),
    ("db", "status"): ("revision",),
    ("db", "reset"): ("--yes", "ALL DATA IS LOST"),
    ("db", "create-migration"): ("message",),
    ("users",): ("create-admin",),
    ("users", "create-admin"): ("--email", "--password", "--full-name", "ADMIN_EMAIL"),
}


@pytest.fixture(scope="module")
def help_outputs(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, ...], tuple[int, str]]:
    """The `--help` of the documented commands through the installed script, run
    concurrently (each start costs seconds of imports)."""
    assert COMMISSARY is not None
    cwd = tmp_path_factory.mktemp("help")
    env = clean_env(cwd / "untouched.db")
    processes = {
        command: subprocess.Popen(
            [COMMISSARY, *command, "--help"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in HELP_EXPECTATIONS
    }
    outputs = {}
    for command, process in processes.items():
        # Thirteen interpreters start at once: on a busy shared machine that takes minutes.
        out, _ = process.communicate(timeout=600)
        outputs[command] = (process.returncode, out)
    assert not (cwd / "untouched.db").exists(), "--help must not touch the database"
    return outputs


@pytest.mark.parametrize("command", list(HELP_EXPECTATIONS), ids=lambda c: " ".join(c) or "-")
def test_console_script_help_of_each_documented_command_exits_0_and_lists_its_options(
    help_outputs: dict[tuple[str, ...], tuple[int, str]], command: tuple[str, ...]
) -> None:
    assert command in REGISTERED, f"`{' '.join(command)}` is no longer a command"
    code, out = help_outputs[command]
    assert code == 0, out
    assert "Usage: commissary" in out
    for expected in (*REGISTERED[command], *HELP_EXPECTATIONS[command]):
        assert expected in out, f"{expected!r} missing from `{' '.join(command)} --help`:\n{out}"


@pytest.mark.parametrize("command", sorted(REGISTERED), ids=lambda c: " ".join(c) or "-")
def test_help_of_every_registered_command_exits_0_and_lists_its_options(
    command: tuple[str, ...],
) -> None:
    """In process, so commands added later are covered without a process start each."""
    from commissary.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})

    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    for expected in REGISTERED[command]:
        assert expected in result.output, f"{expected!r} missing:\n{result.output}"


# --- database -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def initialized_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file after `db init` with ADMIN_EMAIL/ADMIN_PASSWORD: copy it, do not change."""
    cwd = tmp_path_factory.mktemp("template")
    db = cwd / "template.db"
    env = clean_env(db, ADMIN_EMAIL=ADMIN_EMAIL, ADMIN_PASSWORD=ADMIN_PASSWORD)
    result = run(cwd, env, "db", "init")
    assert result.returncode == 0, result.stderr
    assert f"database at revision {HEAD}" in result.stdout
    assert f"admin {ADMIN_EMAIL} ready" in result.stdout
    return db


@pytest.fixture
def db(tmp_path: Path, initialized_db: Path) -> Path:
    """A private copy of the initialized database."""
    copy = tmp_path / "commissary.db"
    shutil.copyfile(initialized_db, copy)
    return copy


def test_db_init_stores_the_admin_from_the_environment(db: Path) -> None:
    assert user_roles(db) == {ADMIN_EMAIL: "admin"}


def test_db_status_shows_pending_before_init_and_up_to_date_after(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "fresh.db")

    before = run(tmp_path, env, "db", "status")
    assert before.returncode == 0, before.stderr
    assert "current: (empty)" in before.stdout
    assert f"head:    {HEAD}" in before.stdout
    assert "pending migrations" in before.stdout
    assert "up to date" not in before.stdout

    init = run(tmp_path, env, "db", "init")
    assert init.returncode == 0, init.stderr
    assert "no admin account created" in init.stdout  # no ADMIN_EMAIL/ADMIN_PASSWORD
    assert user_roles(tmp_path / "fresh.db") == {}

    after = run(tmp_path, env, "db", "status")
    assert after.returncode == 0, after.stderr
    assert f"current: {HEAD}" in after.stdout
    assert "up to date" in after.stdout
    assert "pending" not in after.stdout


def test_db_reset_without_yes_and_no_stdin_aborts_and_keeps_the_data(
    tmp_path: Path, db: Path
) -> None:
    result = run(tmp_path, clean_env(db), "db", "reset")

    assert result.returncode != 0
    assert "Abort" in result.stderr
    assert user_roles(db) == {ADMIN_EMAIL: "admin"}


def test_db_reset_with_yes_empties_the_users_and_keeps_the_schema(tmp_path: Path, db: Path) -> None:
    result = run(tmp_path, clean_env(db), "db", "reset", "--yes")

    assert result.returncode == 0, result.stderr
    assert "reset" in result.stdout
    assert user_roles(db) == {}
    assert revision_of(db) == HEAD


def test_db_downgrade_then_upgrade_moves_the_revision(tmp_path: Path, db: Path) -> None:
    env = clean_env(db)
    down = run(tmp_path, env, "db", "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert "user_account" not in tables_of(db)
    assert revision_of(db) is None

    up = run(tmp_path, env, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert f"database at revision {HEAD}" in up.stdout
    assert "user_account" in tables_of(db)


# --- users --------------------------------------------------------------------------------


def test_users_create_admin_with_a_weak_password_exits_2_naming_the_field(
    tmp_path: Path, db: Path
) -> None:
    result = run(
        tmp_path,
        clean_env(db),
        "users",
        "create-admin",
        "--email",
        "weak@example.com",
        "--password",
        "password123",
    )

    assert result.returncode == 2
    assert "password" in result.stderr
    assert "Traceback" not in result.stderr
    assert "weak@example.com" not in user_roles(db)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, initialized_db: Path) -> Iterator[Server]:
    """`commissary serve` on a copy of the initialized database (shared by the login tests,
    which each use their own accounts)."""
    cwd = tmp_path_factory.mktemp("served")
    db = cwd / "commissary.db"
    shutil.copyfile(initialized_db, db)
    with serve(cwd, clean_env(db)) as server:
        yield server


def test_admin_created_by_db_init_logs_in_as_admin(served: Server) -> None:
    response = login(served.base_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 200, response.text

    profile = me(served.base_url, response.json()["access_token"])
    assert profile.status_code == 200, profile.text
    assert profile.json()["email"] == ADMIN_EMAIL
    assert profile.json()["role"] == "admin"


def test_users_create_admin_makes_an_account_that_logs_in_as_admin(served: Server) -> None:
    db = served.log.parent / "commissary.db"
    result = run(
        served.log.parent,
        clean_env(db),
        "users",
        "create-admin",
        "--email",
        "Chef@Example.com",
        "--password",
        "sous-vide-2024",
        "--full-name",
        "Head Chef",
    )
    assert result.returncode == 0, result.stderr
    assert "admin chef@example.com ready" in result.stdout

    response = login(served.base_url, "chef@example.com", "sous-vide-2024")
    assert response.status_code == 200, response.text
    profile = me(served.base_url, response.json()["access_token"]).json()
    assert profile["role"] == "admin"
    assert profile["full_name"] == "Head Chef"
    assert profile["is_verified"] is True


def test_users_create_admin_promotes_an_existing_customer_and_resets_its_password(
    served: Server,
) -> None:
    registered = httpx.post(
        f"{served.base_url}/api/v1/auth/register",
        json={"email": "waiter@example.com", "password": "first-pass-1", "full_name": "Wai Ter"},
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["role"] == "customer"

    db = served.log.parent / "commissary.db"
    result = run(
        served.log.parent,
        clean_env(db, ADMIN_EMAIL="waiter@example.com", ADMIN_PASSWORD="second-pass-2"),
        "users",
        "create-admin",  # e-mail and password from the environment
    )
    assert result.returncode == 0, result.stderr

    assert login(served.base_url, "waiter@example.com", "first-pass-1").status_code == 401
    response = login(served.base_url, "waiter@example.com", "second-pass-2")
    assert response.status_code == 200, response.text
    profile = me(served.base_url, response.json()["access_token"]).json()
    assert profile["role"] == "admin"
    assert profile["is_verified"] is True


# --- configuration errors -----------------------------------------------------------------


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_worker_and_scheduler_without_redis_url_exit_2_saying_so(
    tmp_path: Path, command: str
) -> None:
    result = run(tmp_path, clean_env(tmp_path / "c.db"), command)

    assert result.returncode == 2
    assert "REDIS_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_without_secret_key_refuses_to_start_naming_secret_key(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    result = run(tmp_path, clean_env(db, ENVIRONMENT="production"), "db", "status")

    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert "SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert not db.exists()


def test_configuration_error_does_not_print_the_rejected_secret_key(tmp_path: Path) -> None:
    weak = "hunter2-weak-key"
    result = run(
        tmp_path,
        clean_env(tmp_path / "c.db", ENVIRONMENT="production", SECRET_KEY=weak),
        "db",
        "status",
    )

    assert result.returncode == 2
    assert "SECRET_KEY" in result.stderr
    assert weak not in result.stderr, result.stderr


# --- serve --------------------------------------------------------------------------------


def test_serve_migrates_an_empty_database_before_answering(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    with serve(tmp_path, clean_env(db)) as server:
        ready = httpx.get(f"{server.base_url}/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok"}

        registered = httpx.post(
            f"{server.base_url}/api/v1/auth/register",
            json={"email": "new@example.com", "password": "fresh-start-9", "full_name": "New"},
            timeout=10,
        )
        assert registered.status_code == 201, registered.text

    assert user_roles(db) == {"new@example.com": "customer"}


def test_serve_no_migrate_leaves_an_empty_database_without_tables(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    with serve(tmp_path, clean_env(db), "--no-migrate") as server:
        assert httpx.get(f"{server.base_url}/health", timeout=10).json() == {"status": "ok"}
        # /ready opens a connection, so the file exists afterwards, still without tables
        assert httpx.get(f"{server.base_url}/ready", timeout=10).status_code == 200

    assert db.exists()
    assert "user_account" not in tables_of(db)
    assert tables_of(db) == set()


def test_serve_stops_while_an_event_stream_is_open(tmp_path: Path, initialized_db: Path) -> None:
    """An event stream never ends by itself: stopping the server must not wait for it."""
    db = tmp_path / "commissary.db"
    shutil.copyfile(initialized_db, db)
    with serve(tmp_path, clean_env(db)) as server:
        token = login(server.base_url, ADMIN_EMAIL, ADMIN_PASSWORD).json()["access_token"]
        url = f"{server.base_url}/api/v1/events/stream"
        with httpx.stream(
            "GET", url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines).startswith("retry: ")
            server.process.terminate()
            # The stream is ended by the server (a hang guard, not a timing: 60 s).
            with contextlib.suppress(httpx.HTTPError):
                for _ in lines:
                    pass
        server.process.wait(60)
    assert "timeout graceful shutdown exceeded" not in server.output()
    assert "Exception in ASGI application" not in server.output()
