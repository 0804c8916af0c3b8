"""The cost of observability (issue 14), measured in one run: the same workload on a stack with
tracing off and on a stack exporting every span over OTLP/HTTP to a local collector stand-in.

Workload per stack: completed purchases/s for N notifications sent at once (gateway → workflow →
Lovable and Resend in the sandbox), then registration latency p50/p99 for M sequential sign-ups.
Each stack is started as `entrega dev` starts it (own ports, temp directory); both log as they do
in dev. The stand-in collector is a tiny HTTP server in this process that accepts and counts the
OTLP/HTTP export requests. Writes bench/results/observe.json.

    .venv/bin/python -m bench.observe [--purchases 100] [--registrations 20]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.common import dev_stack_env, free_port, summary_ms, write_result
from bench.purchases import Bench, _bounded, _wait_completed
from bench.sagas import _person
from devstack import DevStack


class Collector:
    """Accepts OTLP/HTTP trace exports (POST /v1/traces) and counts them."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length", 0))
                self.rfile.read(size)
                collector.requests += 1
                collector.bytes += size
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


async def _workload(env: dict[str, str], purchases: int, registrations: int) -> dict[str, Any]:
    api_url = f"http://127.0.0.1:{env['API_PORT']}"
    bench = Bench(env, api_url, f"http://127.0.0.1:{env['SANDBOX_PORT']}")
    made = await bench.payments("obs", purchases)
    ids = [f"purchase:mercadopago:{p}" for p, _ in made]
    started = time.perf_counter()
    await _bounded([lambda p=p: bench.notify(p) for p, _ in made], 20)
    await _wait_completed(env["DATABASE_URL"], ids)
    purchases_per_s = purchases / (time.perf_counter() - started)

    run = uuid.uuid4().hex[:6]
    latencies = []
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as api:
        for n in range(registrations):
            t0 = time.perf_counter()
            answer = await api.post("/api/v1/profiles/register", json=_person(run, n))
            latencies.append(time.perf_counter() - t0)
            answer.raise_for_status()
    await bench.api.aclose()
    await bench.sandbox.aclose()
    return {
        "purchases": purchases,
        "purchases_per_s": round(purchases_per_s, 1),
        "refused_notifications": dict(bench.refused),
        "registration": summary_ms(latencies),
    }


def _one_stack(label: str, extra_env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"entrega-bench-observe-{label}-"))
    ports, env = dev_stack_env(home, {"WORKER_METRICS_PORT": str(free_port()), **extra_env})
    stack = DevStack(home=home, env=env, ports=ports, say=lambda line: None)
    print(f"[{label}] starting a stack in {home} ...", flush=True)
    stack.start()
    try:
        result = asyncio.run(_workload(stack.env, args.purchases, args.registrations))
    finally:
        stack.stop()
    print(f"[{label}] {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--purchases", type=int, default=100)
    parser.add_argument("--registrations", type=int, default=20)
    args = parser.parse_args()
    collector = Collector()
    try:
        off = _one_stack("tracing-off", {}, args)
        on = _one_stack("tracing-on", {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url}, args)
    finally:
        collector.close()
    write_result(
        "observe",
        {
            "machine": "2 cores shared by the whole stack, the load generator and other work: "
            "indicative numbers, compare the ratios",
            "tracing_off": off,
            "tracing_on": on,
            "collector": {"export_requests": collector.requests, "bytes": collector.bytes},
            "purchases_per_s_ratio_on_over_off": round(
                on["purchases_per_s"] / off["purchases_per_s"], 2
            ),
            "registration_p50_ratio_on_over_off": round(
                on["registration"]["p50_ms"] / off["registration"]["p50_ms"], 2
            ),
        },
    )


if __name__ == "__main__":
    main()
