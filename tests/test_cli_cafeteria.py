"""The cafeteria's commands (`demo`, `heroes`, `meals`, `orders`) on a SQLite file, run
in process through Typer's runner with jobs in process, as a newcomer would type them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commissary.cli import app
from commissary.config import Settings
from commissary.core import migrate

runner = CliRunner()


@pytest.fixture
def cafeteria(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "cafeteria.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("KITCHEN_MIN_SECONDS", "0.05")
    monkeypatch.setenv("KITCHEN_MAX_SECONDS", "0.2")
    monkeypatch.setenv("COLUMNS", "200")
    migrate.upgrade(f"sqlite+aiosqlite:///{db}")
    return db


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_demo_loads_once_and_lists_heroes_and_meals(cafeteria: Path) -> None:
    first = cli("demo")
    assert "Peter Quill" in first
    assert "Nebula Noodles 12.50 EUR" in first
    assert "already loaded" in cli("demo")
    assert len(cli("heroes", "list").splitlines()) == 5
    assert len(cli("meals", "list").splitlines()) == 7


def test_safe_and_unsafe_orders_from_the_command_line(cafeteria: Path) -> None:
    cli("demo")
    safe = cli("orders", "create", "--hero", "1", "--meal", "2", "--meal", "7:2")
    assert "[completed] for Peter Quill: 14.50 EUR" in safe
    assert "2 x Groot Root Tea @ 2.80" in safe
    unsafe = cli("orders", "create", "--hero", "1", "--meal", "1")
    assert "[cancelled]" in unsafe
    assert 'ingredient "peanuts" matches allergy "peanuts"' in unsafe
    shown = cli("orders", "show", "2")
    assert re.search(r"3\. .* status\.cancelled by system", shown)
    listed = cli("orders", "list", "--hero", "1", "--status", "cancelled")
    assert listed.splitlines() == [line for line in listed.splitlines() if "#2 " in line]


def test_cancel_then_delete_an_order(cafeteria: Path) -> None:
    cli("demo")
    placed = cli("orders", "create", "--hero", "3", "--meal", "2", "--no-wait")
    order_id = re.search(r"order #(\d+)", placed)
    assert order_id
    cancelled = cli("orders", "cancel", order_id.group(1), "--reason", "too hungry to wait")
    assert "[cancelled]" in cancelled
    assert "too hungry to wait" in cancelled
    assert "deleted" in cli("orders", "delete", order_id.group(1))
    assert "not found" in cli("orders", "show", order_id.group(1), code=2)


def test_heroes_are_created_updated_and_deleted(cafeteria: Path) -> None:
    created = cli(
        "heroes",
        "create",
        "--email",
        "Nova@Example.com",
        "--name",
        "Nova",
        "--password",
        "stardust-nebula-42",
        "--planet",
        "Xandar",
        "--allergy",
        "Nuts",
    )
    assert "<nova@example.com> planet=Xandar allergies=[Nuts]" in created
    hero_id = re.search(r"#(\d+)", created)
    assert hero_id
    updated = cli(
        "heroes",
        "update",
        hero_id.group(1),
        "--allergy",
        "gluten",
        "--allergy",
        "milk",
        "--planet",
        "Hala",
    )
    assert "planet=Hala allergies=[gluten, milk]" in updated
    assert "allergies=none" in cli("heroes", "update", hero_id.group(1), "--clear-allergies")
    assert "deleted" in cli("heroes", "delete", hero_id.group(1))
    assert "not found" in cli("heroes", "show", hero_id.group(1), code=2)


def test_meals_are_created_updated_and_deleted(cafeteria: Path) -> None:
    cli("demo")
    created = cli(
        "meals",
        "create",
        "--restaurant",
        "1",
        "--name",
        "Void Dumplings",
        "--price",
        "7.25",
        "--ingredient",
        "void flour",
        "--allergen",
        "gluten",
        "--origin",
        "Contraxia",
    )
    assert "Void Dumplings 7.25 EUR from Contraxia" in created
    meal_id = re.search(r"#(\d+)", created)
    assert meal_id
    assert "(unavailable)" in cli(
        "meals", "update", meal_id.group(1), "--unavailable", "--price", "8.00"
    )
    assert "8.00 EUR" in cli("meals", "show", meal_id.group(1))
    assert "deleted" in cli("meals", "delete", meal_id.group(1))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (
                "heroes",
                "create",
                "--email",
                "bad",
                "--name",
                "X",
                "--password",
                "stardust-nebula-42",
            ),
            "email",
        ),
        (
            ("heroes", "create", "--email", "a@b.io", "--name", "X", "--password", "short"),
            "password",
        ),
        (("meals", "create", "--restaurant", "1", "--name", "X", "--price", "-1"), "price"),
        (
            ("meals", "create", "--restaurant", "99", "--name", "X", "--price", "1"),
            "unknown_restaurant",
        ),
        (("orders", "create", "--hero", "1", "--meal", "banana"), "no meal is named 'banana'"),
        (("orders", "create", "--hero", "1", "--meal", ":2"), "--meal needs a meal"),
        (("orders", "create", "--hero", "1", "--meal", "999"), "product 999 not found"),
        (("orders", "create", "--hero", "42", "--meal", "1"), "user_not_found"),
        (("orders", "cancel", "999"), "not found"),
    ],
)
def test_bad_input_is_a_clear_error(cafeteria: Path, args: tuple[str, ...], message: str) -> None:
    cli("demo")
    assert message in cli(*args, code=2)


def test_heroes_and_meals_are_named_by_email_or_name_when_the_admin_is_user_1(
    cafeteria: Path,
) -> None:
    """The README's walk-through with ADMIN_EMAIL set: the admin takes id 1."""
    cli("users", "create-admin", "--email", "root@example.com", "--password", "kitchen-boss-77")
    cli("demo")
    assert "is an admin (root@example.com), not a hero" in cli(
        "orders", "create", "--hero", "1", "--meal", "2", code=2
    )

    safe = cli(
        "orders",
        "create",
        "--hero",
        "quill@cafeteria.example",
        "--meal",
        "Xandarian Star Soup",
        "--meal",
        "groot root tea:2",
    )
    assert "[completed] for Peter Quill: 14.50 EUR" in safe
    assert "2 x Groot Root Tea @ 2.80" in safe
    unsafe = cli("orders", "create", "--hero", "Peter Quill", "--meal", "Nebula Noodles")
    assert 'ingredient "peanuts" matches allergy "peanuts"' in unsafe
    assert len(cli("orders", "list", "--hero", "peter quill").splitlines()) == 2
    assert "<quill@cafeteria.example> planet=Terra" in cli("heroes", "show", "Peter Quill")
    assert "Kree Kale Salad 9.40 EUR" in cli("meals", "show", "Kree Kale Salad")


def test_unknown_or_ambiguous_names_are_a_clear_error(cafeteria: Path) -> None:
    cli("demo")
    for email in ("groot1@example.com", "groot2@example.com"):
        cli("heroes", "create", "--email", email, "--name", "Groot", "--password", "i-am-groot-1")
    cli("meals", "create", "--restaurant", "1", "--name", "Comet Sorbet", "--price", "5")

    ambiguous = cli("heroes", "show", "Groot", code=2)
    assert "2 heroes are named 'Groot'" in ambiguous
    assert "groot1@example.com" in ambiguous and "groot2@example.com" in ambiguous
    assert "no hero is named 'Thanos'" in cli("heroes", "show", "Thanos", code=2)
    assert "no hero has the e-mail" in cli("heroes", "delete", "nobody@example.com", code=2)
    assert "2 meals are named 'Comet Sorbet'" in cli(
        "orders", "create", "--hero", "Drax", "--meal", "Comet Sorbet", code=2
    )
    assert "no meal is named 'Moon Pie'" in cli("meals", "delete", "Moon Pie", code=2)
    assert cli("orders", "list") == ""  # nothing was ordered by a failed command
