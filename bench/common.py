"""What every benchmark shares: where results go, how percentiles are read, and a whole dev
stack on free ports."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import sys
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devstack import Ports, dev_environment

if TYPE_CHECKING:
    from temporalio.converter import DataConverter
    from temporalio.testing import WorkflowEnvironment

RESULTS = Path(__file__).parent / "results"
# The caller's shell may point at its own database, Temporal or trace collector: a benchmark's
# stack brings its own (unless the benchmark asks for one of them).
_FOREIGN = ("DATABASE_URL", "TEMPORAL_ADDRESS", "OTEL_EXPORTER_OTLP_ENDPOINT")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def dev_stack_env(
    home: Path, overrides: Mapping[str, str] | None = None
) -> tuple[Ports, dict[str, str]]:
    """The ports and environment of an `entrega dev` stack (devstack.DevStack) in `home`, every
    process on a free port so that it never meets a developer's own stack; `overrides` add or
    replace variables."""
    ports = Ports(
        api=free_port(),
        sandbox=free_port(),
        temporal=free_port(),
        temporal_ui=free_port(),
        codec=free_port(),
    )
    base = {
        **os.environ,
        "API_PORT": str(ports.api),
        "SANDBOX_PORT": str(ports.sandbox),
        "TEMPORAL_PORT": str(ports.temporal),
        "TEMPORAL_UI_PORT": str(ports.temporal_ui),
        "CODEC_SERVER_PORT": str(ports.codec),
        # The sandbox posts its webhooks to this stack's API.
        "SANDBOX_GATEWAY_URL": f"http://127.0.0.1:{ports.api}",
    }
    for name in _FOREIGN:
        base.pop(name, None)
    base.update(overrides or {})
    return ports, dev_environment(base, home, f"http://127.0.0.1:{ports.sandbox}")


def percentile(samples: list[float], pct: float) -> float:
    """The `pct` percentile (0-100) of `samples`, nearest-rank."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    result = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    return path


# --- services run in this process (benchmarks that drive the worker or the sandbox directly) ---


async def local_database(stack: AsyncExitStack, home: Path) -> str:
    """An embedded PostgreSQL in `home/pg`, migrated and seeded, stopped when `stack` closes;
    answers its database URL."""
    from db import embedded
    from db.migrate import migrate
    from db.seed import seed_dev_plan

    base_url = embedded.start(home / "pg")
    stack.callback(embedded.stop, home / "pg")
    database_url = embedded.ensure_database(base_url, "bench")
    migrate(database_url)
    seed_dev_plan(database_url)
    return database_url


async def local_temporal(
    stack: AsyncExitStack, data_converter: DataConverter | None = None
) -> WorkflowEnvironment:
    """The pip-installed Temporal dev server with Entrega's search attributes, shut down when
    `stack` closes."""
    from temporalio.converter import DataConverter as _DefaultConverter
    from temporalio.testing import WorkflowEnvironment

    from contracts import search_attributes

    temporal = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        data_converter=data_converter or _DefaultConverter.default,
        search_attributes=list(search_attributes.ALL),
        dev_server_log_level="error",
    )
    stack.push_async_callback(temporal.shutdown)
    return temporal


async def serve(stack: AsyncExitStack, app: Any, port: int) -> None:
    """Serve the ASGI `app` on 127.0.0.1:`port` from this event loop until `stack` closes;
    returns once it accepts connections."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    serving = asyncio.create_task(server.serve())

    async def _stop() -> None:
        server.should_exit = True
        await serving

    stack.push_async_callback(_stop)
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.02)


class RawHttp:
    """A minimal HTTP/1.1 client with keep-alive connections, for load generators.

    A load generator sharing 2 cores with the stack must not be the bottleneck it measures:
    httpx spends a few milliseconds of CPU per request, and at a sale's burst rate the generator's
    own event loop then queues the requests it is about to send, which the benchmark would count
    as the gateway's latency. This writes a prepared request and reads the status line, headers and
    a Content-Length body, nothing more. Like a provider, it opens another connection rather
    than wait for a busy one; an idle one is dropped after 2 s, before the server's keep-alive
    (uvicorn: 5 s) closes it under a request."""

    _KEEP_IDLE = 2.0

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
        self._host, self._port = host, int(port or 80)
        self._idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, target: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST `body` to `target` (path and query); answers the status code. Raises OSError,
        ValueError or asyncio.IncompleteReadError when the connection fails."""
        lines = [
            f"POST {target} HTTP/1.1",
            f"Host: {self._host}:{self._port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        reader, writer = await self._connection()
        try:
            writer.write(request)
            status = int((await reader.readline()).split(b" ", 2)[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self._idle.append((time.monotonic(), reader, writer))
        return status

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        now = time.monotonic()
        while self._idle:
            since, reader, writer = self._idle.pop()
            if now - since < self._KEEP_IDLE and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self._host, self._port)

    async def close(self) -> None:
        while self._idle:
            _, _, writer = self._idle.pop()
            writer.close()
