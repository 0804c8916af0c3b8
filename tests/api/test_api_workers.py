"""`API_WORKERS`: `entrega api` serves one port from several processes, and `/metrics` counts
the requests of all of them."""

from __future__ import annotations

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

pytestmark = pytest.mark.db

ROOT = Path(__file__).parent.parent.parent


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _healthz_total(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("entrega_http_requests_total{") and 'route="/healthz"' in line
    )


def test_two_processes_serve_one_port(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= DEV_SECRETS | {
        "ENTREGA_ENV": "dev",
        "ENTREGA_HOME": str(tmp_path),
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # not needed to answer /healthz
        "API_PORT": str(port),
        "API_WORKERS": "2",
    }
    api = subprocess.Popen([sys.executable, "-m", "cli", "api"], env=env, cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline:
            assert api.poll() is None, "entrega api exited at start"
            workers = _children(api.pid)
            try:
                if len(workers) >= 2 and httpx.get(f"{url}/healthz", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"never answered with two workers: {workers}")
        # New connections each time: the kernel spreads them over both processes.
        for _ in range(40):
            assert httpx.get(f"{url}/healthz", timeout=5).is_success
        counted = _healthz_total(httpx.get(f"{url}/metrics", timeout=5).text)
        assert counted >= 41, counted  # every process's requests, whichever one answers
    finally:
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(timeout=30)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait()
    deadline = time.monotonic() + 15
    while [pid for pid in workers if Path(f"/proc/{pid}").exists()]:
        assert time.monotonic() < deadline, "a worker outlived `entrega api`"
        time.sleep(0.2)
