"""A newcomer's first hour with the `commissary` command, run as a real subprocess: what it
says before the database exists, about the admin, about migrations, the links it mails and
the logs it prints."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from commissary.core import migrate
from tests.test_cli import (
    COMMISSARY,
    clean_env,
    run,
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
