"""`entrega dev` brings up all five processes, refuses a second copy, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from db import embedded
from devstack import dev_environment
from tests.support import free_port

pytestmark = [pytest.mark.db, pytest.mark.temporal]

READY_BANNER = "Press Ctrl-C to stop everything."


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _dev_env(tmp_path: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Free ports for every process of `entrega dev`, and its environment: its own home under
    `tmp_path`, and none of the caller's database or Temporal."""
    ports = {
        name: free_port()
        for name in ("API", "SANDBOX", "TEMPORAL", "TEMPORAL_UI", "WORKER_METRICS", "CODEC_SERVER")
    }
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    env |= {f"{name}_PORT": str(port) for name, port in ports.items()}
    env["ENTREGA_HOME"] = str(tmp_path / "home")
    return ports, env


def _start_dev(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "dev"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As a shell's background job gets it: SIGINT ignored. `entrega dev` must still stop on it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )


def _wait_for_banner(process: subprocess.Popen[str], timeout: float = 90) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if READY_BANNER in line:
            return "".join(seen)
    process.send_signal(signal.SIGINT)  # let it stop what it started
    process.communicate(timeout=60)
    raise AssertionError("entrega dev never became ready:\n" + "".join(seen))


def test_dev_stack_starts_everything_and_stops_cleanly(tmp_path: Path) -> None:
    """All five processes answer, the CLI reaches them via dev.env, a second copy fails, and
    SIGINT frees every port."""
    ports, env = _dev_env(tmp_path)

    dev = _start_dev(env, tmp_path)
    try:
        banner = _wait_for_banner(dev)
        assert f"http://127.0.0.1:{ports['API']}/docs" in banner
        assert f"http://127.0.0.1:{ports['TEMPORAL_UI']}" in banner
        assert f"http://127.0.0.1:{ports['SANDBOX']}/_sandbox/inbox" in banner
        worker_metrics = f"http://127.0.0.1:{ports['WORKER_METRICS']}/metrics"
        assert worker_metrics in banner
        assert "temporal_" in httpx.get(worker_metrics, timeout=5).text

        ready = httpx.get(f"http://127.0.0.1:{ports['API']}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert httpx.get(f"http://127.0.0.1:{ports['TEMPORAL_UI']}/", timeout=5).status_code == 200
        inbox = httpx.get(f"http://127.0.0.1:{ports['SANDBOX']}/_sandbox/inbox", timeout=5)
        assert inbox.status_code == 200
        docs = httpx.get(f"http://127.0.0.1:{ports['API']}/docs", timeout=5)
        assert docs.status_code == 200
        codec = f"http://127.0.0.1:{ports['CODEC_SERVER']}"
        assert f"Codec server      {codec}" in banner
        ui_origin = f"http://127.0.0.1:{ports['TEMPORAL_UI']}"
        decoded = httpx.post(
            f"{codec}/decode",
            json={"payloads": []},
            headers={"origin": ui_origin, "x-namespace": "default"},
            timeout=5,
        )
        assert decoded.status_code == 200, decoded.text
        assert decoded.headers["access-control-allow-origin"] == ui_origin
        ui_settings = httpx.get(f"{ui_origin}/api/v1/settings", timeout=5).json()
        assert ui_settings["Codec"]["Endpoint"] == codec

        second = subprocess.run(
            [sys.executable, "-m", "cli", "dev"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert "already running" in second.stderr

        env_file = tmp_path / "home" / "dev.env"
        operator_env = {"PATH": os.environ["PATH"]} | _read_exports(env_file)
        migrate = subprocess.run(
            [sys.executable, "-m", "cli", "migrate"],
            env=operator_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrate.returncode == 0, migrate.stderr
        assert "database is up to date" in migrate.stdout

        children = psutil.Process(dev.pid).children(recursive=True)
        assert len(children) >= 5  # temporal, codec server, sandbox, worker, api
    finally:
        dev.send_signal(signal.SIGINT)
        output, _ = dev.communicate(timeout=60)

    assert dev.returncode == 0, output
    assert "no process left behind" in output
    assert not env_file.exists()
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    for name, port in ports.items():
        assert not _port_in_use(port), f"{name} port {port} still in use"
    pg_data = str(tmp_path / "home" / "pg")
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if pg_data in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == [], "embedded PostgreSQL still running"


def _read_exports(path: Path) -> dict[str, str]:
    import shlex

    exports = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            exports[name] = shlex.split(value)[0]
    return exports


def test_variables_already_set_win_over_dev_values(tmp_path: Path) -> None:
    """A secret set in the environment is kept; the missing ones get dev values and sandbox URLs."""
    env = dev_environment({"ADMIN_TOKEN": "mine"}, tmp_path, "http://127.0.0.1:9")
    assert env["ADMIN_TOKEN"] == "mine"
    assert env["RESEND_API_KEY"].startswith("dev-")
    assert env["ASAAS_API_URL"] == "http://127.0.0.1:9/asaas/v3"
    assert env["ENTREGA_ENV"] == "dev"


def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    """Even if `entrega dev` is SIGKILLed (no chance to clean up), its children stop too."""
    ports, env = _dev_env(tmp_path)
    dev = _start_dev(env, tmp_path)
    children: list[psutil.Process] = []
    try:
        _wait_for_banner(dev)
        children = psutil.Process(dev.pid).children(recursive=True)
        assert len(children) >= 4
        dev.kill()
        dev.communicate(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], f"still running after the supervisor died: {alive}"
        for name, port in ports.items():
            assert not _port_in_use(port), f"{name} port {port} still in use"
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.communicate(timeout=30)
        for child in children:  # whatever outlived a failing run
            if child.is_running():
                child.kill()
        # PostgreSQL runs as a daemon of its own (pg_ctl); stop it as Ctrl-C would.
        embedded.stop(tmp_path / "home" / "pg")
