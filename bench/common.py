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
