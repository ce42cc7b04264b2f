"""The README's marketplace walk-through (`examples/marketplace.sh`), run as written against a
real `commissary serve` on the embedded default: a customer orders a delivery and follows it
live, the restaurant accepts it, a courier hands it over with the customer's code, and an
integrator's webhook receives every event, signed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import free_port
from tests.test_cli import clean_env, run, serve

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "marketplace.sh"
ADMIN = {"ADMIN_EMAIL": "admin@marketplace.example", "ADMIN_PASSWORD": "galaxy-admin-pass-42"}
JOURNEY = [
    "created",
    "status.awaiting_acceptance",
    "accepted",
    "delivery.offered",
    "status.ready",
    "courier.assigned",
    "picked_up",
    "courier.location",
    "delivered",
]


def section(output: str, title: str) -> list[str]:
    """The lines the script printed under ``== title``."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    part = plain.split(f"== {title}", 1)[1].split("\n== ", 1)[0]
    return [line for line in part.splitlines()[1:] if line]


def test_the_marketplace_walkthrough_runs_as_written(tmp_path: Path) -> None:
    if shutil.which("jq") is None or shutil.which("curl") is None:
        pytest.skip("the walk-through needs curl and jq (scripts/bootstrap --servers)")
    db = tmp_path / "commissary.db"
    env = clean_env(db, **ADMIN)
    assert run(tmp_path, env, "db", "init").returncode == 0
    with serve(tmp_path, clean_env(db)) as server:
        result = subprocess.run(
            ["bash", str(SCRIPT)],
            env={**clean_env(db), **ADMIN, "BASE": server.base_url, "HOOK_PORT": str(free_port())},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr + server.output()
    out = result.stdout
    live = [json.loads(line) for line in section(out, "What the customer saw live")]
    assert [e["type"] for e in live] == JOURNEY
    ids = [e["id"] for e in live]
    assert ids == list(range(ids[0], ids[0] + len(JOURNEY)))  # gap-free, in order
    hooks = [json.loads(line) for line in section(out, "What the integrator's webhook received")]
    assert [(h["id"], h["type"]) for h in hooks] == [(e["id"], e["type"]) for e in live]
    assert {h["signature"] for h in hooks} == {"valid"}
    door = section(out, "At the door")
    assert door[-1] == '{"order_id":1,"status":"completed"}'
    read = section(out, "The integrator reads the order")
    assert json.loads(read[0])["status"] == "completed"
    assert json.loads(read[0])["handover_code"] is None  # the code is the customer's alone
