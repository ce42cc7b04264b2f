"""A newcomer's first hour with the `commissary` command, run as a real subprocess: what it
says before the database exists, about the admin, about migrations, the links it mails and
the logs it prints."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from commissary.core import migrate
from commissary.core.logging import use_colors
from tests.test_cli import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    COMMISSARY,
    Server,
    clean_env,
    run,
    serve,
    user_roles,
)

pytestmark = pytest.mark.skipif(COMMISSARY is None, reason="the commissary script is not installed")

VERSIONS = migrate.MIGRATIONS / "versions"


# --- before `db init` -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("heroes", "list"),
        ("demo",),
        ("orders", "create", "--hero", "quill@cafeteria.example", "--meal", "1"),
        ("users", "create-admin", "--email", "a@example.com", "--password", "kitchen-boss-77"),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_command_without_a_database_says_to_run_db_init_and_creates_no_file(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    db = tmp_path / "commissary.db"

    result = run(tmp_path, clean_env(db), *command)

    assert result.returncode == 2, result.stdout
    assert result.stderr.strip().splitlines() == [
        f"no database at {db}: run `commissary db init` first"
    ]
    assert not db.exists()
    assert list(tmp_path.iterdir()) == []


def test_command_on_a_database_without_schema_says_to_run_db_init(tmp_path: Path) -> None:
    db = tmp_path / "commissary.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE unrelated (id INTEGER)")

    result = run(tmp_path, clean_env(db), "heroes", "list")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "the database has no schema yet: run `commissary db init` first"
    ]


def test_db_status_before_init_creates_no_file(tmp_path: Path) -> None:
    db = tmp_path / "commissary.db"

    result = run(tmp_path, clean_env(db), "db", "status")

    assert result.returncode == 0, result.stderr
    assert "current: (empty)" in result.stdout
    assert not db.exists()


# --- the admin ------------------------------------------------------------------------------


def test_db_init_without_admin_settings_says_how_to_create_one(tmp_path: Path) -> None:
    db = tmp_path / "commissary.db"

    result = run(tmp_path, clean_env(db, ADMIN_EMAIL=ADMIN_EMAIL), "db", "init")

    assert result.returncode == 0, result.stderr
    assert "no admin account created (ADMIN_PASSWORD not set)" in result.stdout
    assert "commissary users create-admin" in result.stdout
    assert user_roles(db) == {}


def test_db_reset_recreates_the_admin_like_db_init(tmp_path: Path) -> None:
    db = tmp_path / "commissary.db"
    env = clean_env(db, ADMIN_EMAIL=ADMIN_EMAIL, ADMIN_PASSWORD=ADMIN_PASSWORD)
    assert run(tmp_path, env, "db", "init").returncode == 0
    hero = ("--email", "nova@example.com", "--name", "Nova", "--password", "stardust-nebula-42")
    assert run(tmp_path, env, "heroes", "create", *hero).returncode == 0

    reset = run(tmp_path, env, "db", "reset", "--yes")

    assert reset.returncode == 0, reset.stderr
    assert f"admin {ADMIN_EMAIL} ready" in reset.stdout
    assert user_roles(db) == {ADMIN_EMAIL: "admin"}


# --- migrations -----------------------------------------------------------------------------


def test_create_migration_without_model_changes_writes_nothing_and_exits_1(
    tmp_path: Path,
) -> None:
    db = tmp_path / "commissary.db"
    env = clean_env(db)
    assert run(tmp_path, env, "db", "init").returncode == 0
    before = set(VERSIONS.glob("*.py"))
    try:
        result = run(tmp_path, env, "db", "create-migration", "nothing changed")
        written = set(VERSIONS.glob("*.py")) - before
    finally:
        for stray in set(VERSIONS.glob("*.py")) - before:
            stray.unlink()

    assert result.returncode == 1, result.stdout + result.stderr
    assert "no changes" in result.stdout
    assert written == set()


# --- serving --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_plainly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`commissary serve --port N` with no PUBLIC_URL and no NO_COLOR, its log in a file."""
    cwd = tmp_path_factory.mktemp("plain")
    env = clean_env(cwd / "commissary.db")
    del env["NO_COLOR"]
    with serve(cwd, env) as server:
        yield server


def test_verification_link_points_at_the_port_being_served(served_plainly: Server) -> None:
    response = httpx.post(
        f"{served_plainly.base_url}/api/v1/auth/register",
        json={"email": "nova@example.com", "password": "fresh-start-9", "full_name": "Nova"},
        timeout=10,
    )
    assert response.status_code == 201, response.text

    link = re.compile(r"https?://\S+/api/v1/auth/verify\?token=\S+")
    deadline = time.monotonic() + 30  # the mail is logged once the request has committed
    while not link.search(served_plainly.output()) and time.monotonic() < deadline:
        time.sleep(0.1)
    found = link.search(served_plainly.output())
    assert found, served_plainly.output()
    assert found.group().startswith(f"{served_plainly.base_url}/api/v1/auth/verify?token=")
    verified = httpx.get(found.group(), timeout=10)
    assert verified.status_code == 200, verified.text
    assert verified.json()["is_verified"] is True


def test_console_logs_written_to_a_file_have_no_colours(served_plainly: Server) -> None:
    httpx.get(f"{served_plainly.base_url}/health", timeout=10)
    output = served_plainly.output()

    assert "request" in output
    assert "\x1b[" not in output


def test_console_logs_use_colours_on_a_terminal_unless_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    controller, terminal = os.openpty()
    with os.fdopen(terminal, "w") as tty, os.fdopen(controller, "rb"):
        monkeypatch.delenv("NO_COLOR", raising=False)
        assert use_colors(tty) is True
        monkeypatch.setenv("NO_COLOR", "1")
        assert use_colors(tty) is False
