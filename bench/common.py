"""What every benchmark shares: where results go, how percentiles are read, and a whole dev
stack on free ports."""

from __future__ import annotations

import json
import os
import socket
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack import Ports, dev_environment

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
