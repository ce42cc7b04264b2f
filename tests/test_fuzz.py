"""Schema fuzzing: schemathesis sends generated requests (valid and invalid, single and in
stateful sequences along the document's links) to every operation of the OpenAPI document of
a real server, signed in as an admin and as a customer, and runs every check it has: no
server error, only documented statuses, content types and bodies, refused invalid data,
accepted valid data, 405 for other methods, no use after delete."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from commissary.config import Settings
from tests.servers import free_port, wait_for_port

BIN = Path(sys.executable).parent
ROOT = Path(__file__).parents[1]
CONFIG = Path(__file__).with_name("schemathesis.toml")
ADMIN = {"email": "root@example.com", "password": "fuzz-admin-1"}
CUSTOMER = {"email": "hero@example.com", "password": "fuzz-hero-1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server on the embedded default with the demo menu; yields its base URL."""
    home = tmp_path_factory.mktemp("fuzz")
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update(
        DATABASE_URL=f"sqlite:///{home / 'fuzz.db'}",
        ADMIN_EMAIL=ADMIN["email"],
        ADMIN_PASSWORD=ADMIN["password"],
        LOGIN_MAX_FAILURES_PER_CLIENT="100000",
        REGISTER_MAX_PER_CLIENT="100000",
        LOG_LEVEL="ERROR",
    )
    commissary = str(BIN / "commissary")
    for command in (["db", "init"], ["demo"]):
        subprocess.run([commissary, *command], cwd=home, env=env, check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(
        [commissary, "serve", "--port", str(port), "--no-migrate"],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60, process=process)
        base = f"http://127.0.0.1:{port}"
        admin = sign_in(base, ADMIN)
        created = httpx.post(
            f"{base}/api/v1/users",
            json={**CUSTOMER, "full_name": "Fuzz Hero", "role": "customer"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert created.status_code == 201, created.text
        yield base
    finally:
        process.terminate()
        process.wait(10)


def sign_in(base: str, account: dict[str, str]) -> str:
    response = httpx.post(f"{base}/api/v1/auth/login", json=account)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


# The customer runs first: the admin's run may change or delete accounts. The coverage phase
# (boundary and invalid values of every field) runs as the admin, who passes the role checks
# that a customer is refused at before any field is read.
@pytest.mark.parametrize(
    ("account", "phases"),
    [(CUSTOMER, "examples,fuzzing,stateful"), (ADMIN, "examples,coverage,fuzzing,stateful")],
    ids=["customer", "admin"],
)
def test_no_check_finds_anything(
    server: str, account: dict[str, str], phases: str, tmp_path: Path
) -> None:
    schemathesis = shutil.which("schemathesis", path=str(BIN))
    if schemathesis is None:
        pytest.skip("schemathesis is not installed")
    # CI explores the same examples on every run, so a red build is reproducible; developers'
    # runs keep exploring new ones.
    exploration = ["--generation-deterministic"] if os.environ.get("CI") else []
    result = subprocess.run(
        [
            schemathesis,
            "--config-file",
            str(CONFIG),
            "run",
            f"{server}/openapi.json",
            "--checks",
            "all",
            # Replaced by negative_data_rejection_as_documented (tests/fuzz_hooks.py).
            "--exclude-checks",
            "negative_data_rejection",
            "--mode",
            "all",
            "--phases",
            phases,
            "--max-examples",
            "8",
            "--workers",
            "1",
            "--no-color",
            "-H",
            f"Authorization: Bearer {sign_in(server, account)}",
            *exploration,
        ],
        cwd=tmp_path,  # schemathesis writes its report and cache there
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert "generated" in result.stdout
    assert "Stateful" in result.stdout
