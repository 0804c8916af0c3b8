"""How many simple requests per second the provider sandbox serves.

Starts the sandbox (`entrega sandbox`) in its own process on a free port, or uses `--url`
(e.g. `make dev`'s http://127.0.0.1:8900 with its dev secrets), then drives it with concurrent
httpx load generators, bounded both in request count and in time. httpx costs several times more
CPU per request than the sandbox does, so the load is spread over `--processes` generator
processes and the sandbox's own CPU time is measured too: requests per CPU-second of the sandbox
is its capacity regardless of how fast this machine's clients are. Prints the numbers and writes
JSON to bench/results/.

    .venv/bin/python -m bench.sandbox [--requests 6000] [--processes 2] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.common import RESULTS, free_port, percentile
from devstack import DEV_SECRETS

MP_TOKEN = os.environ.get("MERCADOPAGO_ACCESS_TOKEN", DEV_SECRETS["MERCADOPAGO_ACCESS_TOKEN"])
ASAAS_KEY = os.environ.get("ASAAS_API_KEY", DEV_SECRETS["ASAAS_API_KEY"])
SCENARIOS = ("mercadopago.get_payment", "asaas.list_customers", "sandbox.health")
# httpx's pool bookkeeping grows with its size: small clients, several of them, go faster.
WORKERS_PER_CLIENT = 4

Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class Result:
    scenario: str
    requests: int
    errors: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    processes: int
    concurrency: int
    sandbox_cpu_seconds: float | None
    sandbox_requests_per_cpu_second: float | None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def sandbox_process() -> Iterator[tuple[str, int]]:
    """`entrega sandbox` in a child process on a free port with dev secrets; stopped on exit."""
    port = free_port()
    env = {**os.environ, **DEV_SECRETS, "ENTREGA_ENV": "dev", "SANDBOX_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "sandbox"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise SystemExit(f"sandbox exited: {stderr}")
            try:
                if httpx.get(f"{url}/_sandbox/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("sandbox did not start within 30 s")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def scenario_call(name: str, payment_path: str) -> Call:
    mp_headers = {"Authorization": f"Bearer {MP_TOKEN}"}
    asaas_headers = {"access_token": ASAAS_KEY, "User-Agent": "entrega-bench"}
    calls: dict[str, Call] = {
        "mercadopago.get_payment": lambda http: http.get(payment_path, headers=mp_headers),
        "asaas.list_customers": lambda http: http.get(
            "/asaas/v3/customers", params={"externalReference": "nobody"}, headers=asaas_headers
        ),
        "sandbox.health": lambda http: http.get("/_sandbox/health"),
    }
    return calls[name]


async def generate(
    url: str, call: Call, requests: int, concurrency: int, seconds: float, start_at: float
) -> tuple[list[float], int, float]:
    """One generator process: (latencies, errors, finish time), starting at wall time start_at."""
    latencies: list[float] = []
    errors = issued = 0
    deadline = start_at + seconds

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal issued, errors
        while issued < requests and time.time() < deadline:
            issued += 1
            begin = time.perf_counter()
            try:
                if (await call(http)).status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - begin)

    clients = [
        httpx.AsyncClient(base_url=url, timeout=10)
        for _ in range(max(1, concurrency // WORKERS_PER_CLIENT))
    ]
    try:
        # Warm every connection and code path, then start together with the other processes.
        await asyncio.gather(*(call(clients[n % len(clients)]) for n in range(concurrency)))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await asyncio.gather(*(worker(clients[n % len(clients)]) for n in range(concurrency)))
    finally:
        for http in clients:
            await http.aclose()
    return latencies, errors, time.time()


def _generator_process(
    url: str,
    name: str,
    payment_path: str,
    requests: int,
    concurrency: int,
    seconds: float,
    start_at: float,
) -> tuple[list[float], int, float]:
    call = scenario_call(name, payment_path)
    return asyncio.run(generate(url, call, requests, concurrency, seconds, start_at))


def measure(
    url: str, name: str, payment_path: str, args: argparse.Namespace, sandbox_pid: int | None
) -> Result:
    per_process = -(-args.requests // args.processes)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.processes, mp_context=context) as pool:
        # Spawned interpreters take a moment to import; start everyone at the same instant.
        start_at = time.time() + 3.0
        cpu_before = cpu_seconds(sandbox_pid) if sandbox_pid else None
        futures = [
            pool.submit(
                _generator_process,
                url,
                name,
                payment_path,
                per_process,
                args.concurrency,
                args.seconds,
                start_at,
            )
            for _ in range(args.processes)
        ]
        outcomes = [f.result() for f in futures]
        cpu_used = (
            cpu_seconds(sandbox_pid) - cpu_before
            if sandbox_pid and cpu_before is not None
            else None
        )
    latencies = [lat for outcome in outcomes for lat in outcome[0]]
    errors = sum(outcome[1] for outcome in outcomes)
    elapsed = max(outcome[2] for outcome in outcomes) - start_at
    return Result(
        scenario=name,
        requests=len(latencies),
        errors=errors,
        seconds=round(elapsed, 3),
        requests_per_second=round(len(latencies) / elapsed, 1),
        p50_ms=round(percentile(latencies, 50) * 1000, 2),
        p95_ms=round(percentile(latencies, 95) * 1000, 2),
        p99_ms=round(percentile(latencies, 99) * 1000, 2),
        processes=args.processes,
        concurrency=args.concurrency * args.processes,
        # Includes the warm-up calls, so it slightly understates the capacity.
        sandbox_cpu_seconds=round(cpu_used, 2) if cpu_used is not None else None,
        sandbox_requests_per_cpu_second=(round(len(latencies) / cpu_used) if cpu_used else None),
    )


def run(url: str, args: argparse.Namespace, sandbox_pid: int | None) -> list[Result]:
    made = httpx.post(
        f"{url}/_sandbox/mercadopago/payments",
        json={"payer_email": "bench@example.com", "amount": "49.90"},
        timeout=10,
    )
    made.raise_for_status()
    payment_path = f"/mercadopago/v1/payments/{made.json()['id']}"
    return [measure(url, name, payment_path, args, sandbox_pid) for name in SCENARIOS]


def main() -> None:
    parser = argparse.ArgumentParser(description="Requests per second of the provider sandbox.")
    parser.add_argument("--url", help="an already running sandbox (default: start one)")
    parser.add_argument("--requests", type=int, default=6000, help="per scenario (default 6000)")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--concurrency", type=int, default=8, help="in flight per process")
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound per scenario")
    args = parser.parse_args()

    if args.url:
        results = run(args.url.rstrip("/"), args, None)
    else:
        with sandbox_process() as (url, pid):
            results = run(url, args, pid)

    header = ("scenario", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "req/cpu-s")
    print(f"{header[0]:<26}" + "".join(f"{h:>10}" for h in header[1:]))
    for r in results:
        row = (r.requests, r.errors, r.requests_per_second, r.p50_ms, r.p95_ms, r.p99_ms)
        capacity = r.sandbox_requests_per_cpu_second or "-"
        print(f"{r.scenario:<26}" + "".join(f"{v:>10}" for v in (*row, capacity)))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"sandbox-{stamp}.json"
    summary = {
        "benchmark": "sandbox",
        "at": stamp,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "results": [asdict(r) for r in results],
    }
    out.write_text(json.dumps(summary, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
