"""Schema fuzzing: schemathesis sends generated requests (valid and invalid) to every
operation of the OpenAPI document of a real server, signed in as an admin, and checks that
no answer is a server error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from commissary.config import Settings
from tests.servers import free_port, wait_for_port

BIN = Path(sys.executable).parent


def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    schemathesis = shutil.which("schemathesis", path=str(BIN))
    if schemathesis is None:
        pytest.skip("schemathesis is not installed")
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'fuzz.db'}",
        ADMIN_EMAIL="root@example.com",
        ADMIN_PASSWORD="fuzz-admin-1",
        LOGIN_MAX_FAILURES_PER_CLIENT="100000",
        REGISTER_MAX_PER_CLIENT="100000",
        LOG_LEVEL="ERROR",
    )
    commissary = str(BIN / "commissary")
    for command in (["db", "init"], ["demo"]):
        subprocess.run(
            [commissary, *command], cwd=tmp_path, env=env, check=True, capture_output=True
        )
    port = free_port()
    server = subprocess.Popen(
        [commissary, "serve", "--port", str(port), "--no-migrate"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"email": "root@example.com", "password": "fuzz-admin-1"},
        ).json()["access_token"]
        result = subprocess.run(
            [
                schemathesis,
                "run",
                f"{base}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "15",
                "--seed",
                "1",
                "--no-color",
                "-H",
                f"Authorization: Bearer {token}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "generated" in result.stdout
