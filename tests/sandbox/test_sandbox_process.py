"""`entrega sandbox` keeps its state in ENTREGA_HOME across a kill and a graceful stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack import DEV_SECRETS
from tests.support import free_port

pytestmark = pytest.mark.sandbox

KEY = DEV_SECRETS["SUPABASE_SERVICE_KEY"]
SERVICE_KEY = {"apikey": KEY, "Authorization": f"Bearer {KEY}"}


def start(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_URL", "_PORT"))}
    env |= DEV_SECRETS | {"ENTREGA_ENV": "dev", "ENTREGA_HOME": str(home)}
    env["SANDBOX_PORT"] = str(port)
    process = subprocess.Popen([sys.executable, "-m", "cli", "sandbox"], env=env, cwd=home)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            assert process.poll() is None, "the sandbox exited at start"
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the sandbox never answered")


def emails(port: int) -> set[str]:
    state = httpx.get(f"http://127.0.0.1:{port}/_sandbox/state", timeout=5).json()
    return {user["email"] for user in state["auth_users"]}


def create_user(port: int, email: str) -> None:
    httpx.post(
        f"http://127.0.0.1:{port}/supabase/auth/v1/admin/users",
        headers=SERVICE_KEY,
        json={"email": email, "password": "s3cret-pass", "email_confirm": True},
        timeout=5,
    ).raise_for_status()


def test_state_survives_kill_and_stop(tmp_path: Path) -> None:
    """A user created before a SIGKILL (after a moment) or a SIGTERM is there after the restart."""
    port = free_port()
    sandbox = start(tmp_path, port)
    try:
        create_user(port, "ana@x.com")
        time.sleep(1.5)  # the flush interval, with room to spare on a busy machine
        sandbox.kill()
        sandbox.wait()

        sandbox = start(tmp_path, port)
        assert emails(port) == {"ana@x.com"}
        create_user(port, "bia@x.com")
        sandbox.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert sandbox.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        if sandbox.poll() is None:
            sandbox.kill()
            sandbox.wait()
    saved = json.loads((tmp_path / "sandbox-state.json").read_text())
    assert {u["email"] for u in saved["state"]["auth_users"].values()} == {"ana@x.com", "bia@x.com"}
