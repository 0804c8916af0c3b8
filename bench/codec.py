"""What the payload codec costs: purchases/s and registration latency, with and without it, in one
run on one stack.

Starts a dev stack on free ports (`entrega dev`'s DevStack), then, for each side in turn
(plain, codec, plain, codec), runs an in-process worker on a task queue of its own and an in-process
API whose Temporal client has either the plain pydantic converter or Entrega's encrypted one:
`--purchases` approved Mercado Pago payments handed off and provisioned to `completed`, and
`--registrations` registrations through the API (`--concurrency` at a time). Writes
bench/results/codec.json.

    .venv/bin/python -m bench.codec [--purchases 100] [--registrations 60] [--concurrency 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from api.app import create_app
from bench.common import dev_stack_env, summary_ms, write_result
from bench.purchases import Bench, _bounded, _pool, _wait_completed, hand_off_all
from bench.sagas import _person
from contracts.purchases import workflow_id
from contracts.signups import RegistrationInput
from devstack import DevStack
from providers.clients import open_provider_clients
from worker import build_worker
from workflows.client import data_converter
from workflows.purchase_client import purchase_config


async def _side(
    name: str, converter: DataConverter, bench: Bench, args: argparse.Namespace, first: int
) -> dict[str, Any]:
    """One side's measurements; its people are numbered from `first` (CPFs must not repeat)."""
    run = uuid.uuid4().hex[:6]
    queue = f"bench-codec-{name}-{run}"
    settings = bench.settings.model_copy(update={"temporal_task_queue": queue})
    client = await Client.connect(settings.temporal_address, data_converter=converter)
    assert settings.database_url
    pool = await _pool(settings.database_url)
    app = create_app(settings, pool=pool, temporal=client)
    made = await bench.payments(f"codec-{name}", args.purchases)
    config = purchase_config(settings)
    try:
        async with (
            open_provider_clients(settings) as providers,
            build_worker(client, settings, pool, providers, task_queue=queue),
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=60
            ) as api,
        ):
            started = time.perf_counter()
            await hand_off_all(client, [p for p, _ in made], config, queue)
            await _wait_completed(
                settings.database_url, [workflow_id("mercadopago", p) for p, _ in made]
            )
            purchases_per_s = args.purchases / (time.perf_counter() - started)

            latencies: list[float] = []

            async def register(n: int) -> None:
                began = time.perf_counter()
                response = await api.post("/api/v1/profiles/register", json=_person(run, n))
                latencies.append(time.perf_counter() - began)
                response.raise_for_status()

            await _bounded(
                [lambda n=n: register(n) for n in range(first, first + args.registrations)],
                args.concurrency,
            )
    finally:
        await pool.close()
    return {"purchases_per_s": round(purchases_per_s, 1), "registration": summary_ms(latencies)}


async def _per_payload_us(converter: DataConverter, count: int = 5000) -> float:
    """CPU per payload of encoding then decoding a registration's input, in microseconds."""
    value = RegistrationInput(
        name="Ana Souza",
        email="ana.souza@example.com",
        phone="+5511987654321",
        cpf_cnpj="52998224725",
        sealed_password="x" * 120,
    )
    started = time.perf_counter()
    for _ in range(count):
        await converter.decode(await converter.encode([value]), [RegistrationInput])
    return round((time.perf_counter() - started) / count * 1e6, 1)


async def measure(
    args: argparse.Namespace, env: dict[str, str], sandbox_url: str
) -> dict[str, Any]:
    bench = Bench(env, "http://unused", sandbox_url)
    converters = {
        "plain": pydantic_data_converter,
        "codec": data_converter(bench.settings.payload_keys),
    }
    rounds: dict[str, list[dict[str, Any]]] = {"plain": [], "codec": []}
    for index, name in enumerate(["plain", "codec"] * args.rounds):
        print(f"  {name} ...", flush=True)
        first = index * args.registrations
        rounds[name].append(await _side(name, converters[name], bench, args, first))
        print(f"    {rounds[name][-1]}", flush=True)
    await bench.sandbox.aclose()
    await bench.api.aclose()

    def best(name: str) -> dict[str, float]:
        return {
            "purchases_per_s": max(r["purchases_per_s"] for r in rounds[name]),
            "registration_p50_ms": min(r["registration"]["p50_ms"] for r in rounds[name]),
            "registration_p99_ms": min(r["registration"]["p99_ms"] for r in rounds[name]),
        }

    plain, codec = best("plain"), best("codec")
    return {
        "encode_decode_us_per_payload": {
            name: await _per_payload_us(converter) for name, converter in converters.items()
        },
        "rounds": rounds,
        "best": {"plain": plain, "codec": codec},
        "codec_cost": {
            "purchases_per_s": f"{(codec['purchases_per_s'] / plain['purchases_per_s'] - 1):+.1%}",
            "registration_p50": (
                f"{(codec['registration_p50_ms'] / plain['registration_p50_ms'] - 1):+.1%}"
            ),
        },
        "machine": f"{os.cpu_count()} cores shared by the stack, the load generator and anything "
        "else running: indicative only",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--purchases", type=int, default=100)
    parser.add_argument("--registrations", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="alternating plain/codec rounds")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="entrega-bench-codec-"))
    ports, env = dev_stack_env(home)
    sandbox_url = f"http://127.0.0.1:{ports.sandbox}"
    stack = DevStack(home=home, env=env, ports=ports, say=lambda line: print(f"  {line}"))
    print(f"starting a stack in {home} ...", flush=True)
    stack.start()
    try:
        result = asyncio.run(measure(args, stack.env, sandbox_url))
    finally:
        stack.stop()
    write_result("codec", {"settings": vars(args), **result})


if __name__ == "__main__":
    main()
