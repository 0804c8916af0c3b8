"""Purchase provisioning benchmark (issue #4), measured in one run on one stack:

(a) webhook acknowledgement latency p50/p99 at 100 notifications/s;
(b) notification → credentials e-mail accepted by the sandbox, p50/p99 at 10/s (the old design
    took about 120 s);
(c) completed purchases/s at saturation, as a ratio to a workflow with the same number of no-op
    activities on the same worker and server (target ≥ 0.5);
(d) gateway intake rate as a ratio to plain `client.start_workflow` calls (target ≥ 0.8).

By default it starts its own stack on free ports (embedded PostgreSQL, Temporal dev server,
sandbox, `entrega worker` and `entrega api`, exactly as `entrega dev` does) in a temp directory.
(b) runs first, on the idle stack; (a) then loads it with more than it can provision. Against a
running `make dev` stack instead:
    .venv/bin/python -m bench.purchases --existing
(the dev secrets and default ports; override with --api-url, --sandbox-url, --temporal-address,
--database-url, --webhook-secret). Prints the numbers and writes bench/results/purchases.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from temporalio.client import Client
from temporalio.worker import Worker

from bench.common import RESULTS, dev_stack_env, percentile
from bench.purchase_baseline import NoopPurchaseWorkflow, noop
from contracts.purchases import PaymentNotice, PurchaseConfig, PurchaseInput, workflow_id
from devstack import DEV_SECRETS, DevStack, sandbox_env
from providers.clients import open_provider_clients
from providers.mercadopago_signature import sign
from settings import Settings
from worker import build_activities
from workflows.client import connect
from workflows.purchase import PurchaseWorkflow
from workflows.purchase_client import hand_off, purchase_config


def summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


class Bench:
    def __init__(self, env: dict[str, str], api_url: str, sandbox_url: str) -> None:
        self.env = env
        self.secret = env["MERCADOPAGO_WEBHOOK_SECRET"]
        self.run = uuid.uuid4().hex[:6]
        self.refused: dict[int, int] = {}
        self.refused_ids: set[str] = set()
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        self.api = httpx.AsyncClient(base_url=api_url, timeout=30, limits=limits)
        self.sandbox = httpx.AsyncClient(base_url=sandbox_url, timeout=30, limits=limits)
        fields = Settings.model_fields
        values = {k.lower(): v for k, v in env.items() if k.lower() in fields}
        self.settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]

    async def payments(
        self, label: str, count: int, status: str = "approved"
    ) -> list[tuple[str, str]]:
        """`count` payments at the sandbox's Mercado Pago: (payment id, payer e-mail)."""

        async def one(n: int) -> tuple[str, str]:
            email = f"{label}-{self.run}-{n}@bench.example.com"
            response = await self.sandbox.post(
                "/_sandbox/mercadopago/payments",
                json={
                    "payer_email": email,
                    "payer_first_name": "Bench",
                    "amount": "49.90",
                    "status": status,
                },
            )
            response.raise_for_status()
            return str(response.json()["id"]), email

        made: list[tuple[str, str]] = []
        for start in range(0, count, 50):
            made += await asyncio.gather(*(one(n) for n in range(start, min(count, start + 50))))
        return made

    async def notify(self, payment_id: str) -> float:
        """POST a correctly signed MP notification to the gateway; answers the seconds it took.
        A refusal (503 when the hand-off timed out) is counted in `self.refused`, as MP would
        simply send again later."""
        request_id = str(uuid.uuid4())
        headers = {
            "x-signature": sign(
                self.secret, data_id=payment_id, request_id=request_id, ts=int(time.time() * 1000)
            ),
            "x-request-id": request_id,
        }
        body = {"type": "payment", "action": "payment.created", "data": {"id": payment_id}}
        started = time.perf_counter()
        response = await self.api.post(
            "/webhooks/mercadopago",
            params={"data.id": payment_id, "type": "payment"},
            json=body,
            headers=headers,
        )
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            self.refused[response.status_code] = self.refused.get(response.status_code, 0) + 1
            self.refused_ids.add(payment_id)
        return elapsed

    async def open_loop(
        self, items: list[Any], rate: float, send: Callable[[Any], Awaitable[float]]
    ) -> tuple[list[float], float]:
        """Send at a fixed rate whatever the answers' speed; answers latencies and achieved rate."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for i, item in enumerate(items):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(item)))
        latencies = await asyncio.gather(*tasks)
        return list(latencies), len(items) / (loop.time() - start)

    # --- (a) ----------------------------------------------------------------------------------

    async def acknowledgement(self, rate: float, seconds: float) -> dict[str, Any]:
        made = await self.payments("ack", int(rate * seconds))
        self.refused = {}
        latencies, achieved = await self.open_loop([p for p, _ in made], rate, self.notify)
        refused = dict(self.refused)
        # Let the worker finish these before (b), so that (b) measures an unloaded stack.
        assert self.settings.database_url
        started = time.perf_counter()
        ids = [workflow_id("mercadopago", p) for p, _ in made if p not in self.refused_ids]
        await _wait_completed(self.settings.database_url, ids)
        await _wait_confirmations(self.settings.database_url, ids)
        return {
            "rate_per_s": round(achieved, 1),
            **summary(latencies),
            "refused": refused,
            "backlog_drained_in_s": round(time.perf_counter() - started, 1),
        }

    async def acknowledgement_of_pending(self, rate: float, seconds: float) -> dict[str, Any]:
        """(a) again with pending payments: each workflow reads its payment and waits, so this
        isolates the gateway from the provisioning work that (a) also puts on the stack."""
        made = await self.payments("ackp", int(rate * seconds), status="pending")
        self.refused = {}
        latencies, achieved = await self.open_loop([p for p, _ in made], rate, self.notify)
        return {
            "rate_per_s": round(achieved, 1),
            **summary(latencies),
            "refused": dict(self.refused),
        }

    # --- (b) ----------------------------------------------------------------------------------

    async def notification_to_credentials(self, rate: float, seconds: float) -> dict[str, Any]:
        made = await self.payments("e2e", int(rate * seconds))
        emails = dict(made)
        sent_at: dict[str, float] = {}

        async def send(payment_id: str) -> float:
            sent_at[emails[payment_id]] = time.time()
            return await self.notify(payment_id)

        self.refused = {}
        await self.open_loop(list(emails), rate, send)
        for payment_id in self.refused_ids & set(emails):
            sent_at.pop(emails[payment_id], None)
        arrived: dict[str, float] = {}
        deadline = time.monotonic() + 180
        while len(arrived) < len(sent_at) and time.monotonic() < deadline:
            state = (await self.sandbox.get("/_sandbox/state")).json()
            for email in state["emails"]:
                to = email["to"][0] if isinstance(email["to"], list) else email["to"]
                if to in sent_at and email["tags"].get("email_type") == "credentials":
                    created = datetime.fromisoformat(email["created_at"].replace("Z", "+00:00"))
                    arrived[to] = created.timestamp()
            await asyncio.sleep(0.5)
        latencies = [arrived[to] - sent_at[to] for to in arrived]
        return {
            "rate_per_s": rate,
            "delivered": f"{len(arrived)}/{len(sent_at)}",
            "refused": dict(self.refused),
            **summary(latencies),
            "old_design_s": 120,
        }

    # --- (c) ----------------------------------------------------------------------------------

    async def saturation(self, client: Client, count: int) -> dict[str, Any]:
        """Purchases and the no-op baseline on one in-process worker and task queue of our own."""
        task_queue = f"bench-purchases-{self.run}"
        made = await self.payments("sat", count)
        assert self.settings.database_url
        pool = await _pool(self.settings.database_url)
        # E-mails on this worker's own queue, as the baseline's are.
        config = purchase_config(self.settings).model_copy(update={"email_task_queue": None})
        try:
            async with open_provider_clients(self.settings) as providers:
                worker = Worker(
                    client,
                    task_queue=task_queue,
                    workflows=[PurchaseWorkflow, NoopPurchaseWorkflow],
                    activities=[*build_activities(self.settings, pool, providers), noop],
                    max_concurrent_activities=200,
                )
                async with worker:
                    ids = [workflow_id("mercadopago", p) for p, _ in made]
                    started = time.perf_counter()
                    await hand_off_all(client, [p for p, _ in made], config, task_queue)
                    await _wait_completed(self.settings.database_url, ids)
                    purchases = count / (time.perf_counter() - started)

                    started = time.perf_counter()
                    handles = await _bounded(
                        [
                            lambda n=n: client.start_workflow(
                                NoopPurchaseWorkflow.run,
                                id=f"bench-noop-{self.run}-{n}",
                                task_queue=task_queue,
                            )
                            for n in range(count)
                        ],
                        50,
                    )
                    await asyncio.gather(*(h.result() for h in handles))
                    baseline = count / (time.perf_counter() - started)
        finally:
            await pool.close()
        return {
            "workflows": count,
            "purchases_per_s": round(purchases, 1),
            "noop_baseline_per_s": round(baseline, 1),
            "ratio": round(purchases / baseline, 2),
            "target": 0.5,
        }

    # --- (d) ----------------------------------------------------------------------------------

    async def intake(self, client: Client, count: int, concurrency: int) -> dict[str, Any]:
        """The gateway's notification rate against plain start_workflow calls for the same work."""
        through_gateway = await self.payments("gw", count)
        direct = await self.payments("direct", count)
        self.refused = {}
        started = time.perf_counter()
        await _bounded([lambda p=p: self.notify(p) for p, _ in through_gateway], concurrency)
        gateway_rate = (count - sum(self.refused.values())) / (time.perf_counter() - started)
        config = purchase_config(self.settings)
        started = time.perf_counter()
        await _bounded(
            [
                lambda p=p: client.start_workflow(
                    PurchaseWorkflow.run,
                    PurchaseInput(provider="mercadopago", provider_order_id=p, config=config),
                    id=workflow_id("mercadopago", p),
                    task_queue=self.settings.temporal_task_queue,
                )
                for p, _ in direct
            ],
            concurrency,
        )
        direct_rate = count / (time.perf_counter() - started)
        return {
            "notifications": count,
            "concurrency": concurrency,
            "gateway_per_s": round(gateway_rate, 1),
            "gateway_refused": dict(self.refused),
            "start_workflow_per_s": round(direct_rate, 1),
            "ratio": round(gateway_rate / direct_rate, 2),
            "target": 0.8,
        }


async def _pool(database_url: str):  # type: ignore[no-untyped-def]
    from db.pool import open_pool

    return await open_pool(database_url, max_size=20)


async def hand_off_all(
    client: Client, payment_ids: list[str], config: PurchaseConfig, task_queue: str
) -> None:
    """Hand every Mercado Pago payment to its workflow directly (no gateway), 50 at a time."""
    await _bounded(
        [
            lambda p=p: hand_off(
                client,
                provider="mercadopago",
                provider_order_id=p,
                notice=PaymentNotice(action="payment.created"),
                config=config,
                task_queue=task_queue,
            )
            for p in payment_ids
        ],
        50,
    )


async def _bounded(calls: list[Callable[[], Awaitable[Any]]], concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def run(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(run(c) for c in calls)))


async def _wait_completed(
    database_url: str, ids: list[str], limit_s: float = 600, stage: str = "completed"
) -> None:
    deadline = time.monotonic() + limit_s
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = await (
                await conn.execute(
                    "SELECT count(*) FROM orders WHERE order_id = ANY(%s) AND stage = %s",
                    (ids, stage),
                )
            ).fetchone()
            if row and row[0] == len(ids):
                return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"purchases did not all reach {stage}")


async def _wait_confirmations(database_url: str, ids: list[str], limit_s: float = 600) -> None:
    """Until every confirmation e-mail (sent beside provisioning) is out: the worker is idle."""
    deadline = time.monotonic() + limit_s
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = await (
                await conn.execute(
                    "SELECT count(*) FROM email_logs WHERE workflow_id = ANY(%s) "
                    "AND email_type = 'purchase_confirmation' AND status = 'sent'",
                    (ids,),
                )
            ).fetchone()
            if row and row[0] == len(ids):
                return
            await asyncio.sleep(0.2)
    raise TimeoutError("confirmation e-mails did not all go out")


async def measure(
    args: argparse.Namespace, env: dict[str, str], api: str, sandbox: str
) -> dict[str, Any]:
    bench = Bench(env, api, sandbox)
    client = await connect(bench.settings)
    results: dict[str, Any] = {"started_at": datetime.now().isoformat(timespec="seconds")}
    parts: list[tuple[str, str, Callable[[], Awaitable[dict[str, Any]]]]] = [
        (
            "b",
            "b_notification_to_credentials",
            lambda: bench.notification_to_credentials(args.e2e_rate, args.e2e_seconds),
        ),
        (
            "a",
            "a_acknowledgement",
            lambda: bench.acknowledgement(args.ack_rate, args.ack_seconds),
        ),
        (
            "a'",
            "a_acknowledgement_pending_payments",
            lambda: bench.acknowledgement_of_pending(args.ack_rate, args.ack_seconds),
        ),
        ("c", "c_saturation", lambda: bench.saturation(client, args.saturation)),
        ("d", "d_intake", lambda: bench.intake(client, args.intake, args.concurrency)),
    ]
    wanted = {part.strip() for part in args.only.split(",")}
    for part, key, run in parts:
        if part in wanted:
            print(f"({part}) {key} ...", flush=True)
            results[key] = await run()
            print(f"    {results[key]}", flush=True)
    await bench.api.aclose()
    await bench.sandbox.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--existing", action="store_true", help="use a running `make dev` stack")
    parser.add_argument("--api-url", default="http://127.0.0.1:8000")
    parser.add_argument("--sandbox-url", default="http://127.0.0.1:8900")
    parser.add_argument("--temporal-address", default="127.0.0.1:7233")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--webhook-secret", default=DEV_SECRETS["MERCADOPAGO_WEBHOOK_SECRET"])
    parser.add_argument("--ack-rate", type=float, default=100.0)
    parser.add_argument("--ack-seconds", type=float, default=5.0)
    parser.add_argument("--e2e-rate", type=float, default=10.0)
    parser.add_argument("--e2e-seconds", type=float, default=10.0)
    parser.add_argument("--saturation", type=int, default=200, help="workflows per side in (c)")
    parser.add_argument("--intake", type=int, default=300, help="notifications per side in (d)")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--only", default="b,a,a',c,d", help="comma-separated parts to run (default: all)"
    )
    args = parser.parse_args()

    stack: DevStack | None = None
    if args.existing:
        env = {
            **DEV_SECRETS,
            **sandbox_env(args.sandbox_url),
            "ENTREGA_ENV": "dev",
            "MERCADOPAGO_WEBHOOK_SECRET": args.webhook_secret,
            "TEMPORAL_ADDRESS": args.temporal_address,
            "DATABASE_URL": args.database_url or "",
        }
        if not args.database_url:
            parser.error("--existing needs --database-url (printed by `entrega dev`)")
        api_url, sandbox_url = args.api_url, args.sandbox_url
    else:
        home = Path(tempfile.mkdtemp(prefix="entrega-bench-purchases-"))
        # The sandbox enforces no Resend limit here: measure Entrega, not Resend's 2/s.
        ports, env = dev_stack_env(home, {"RESEND_RATE_LIMIT": "1000"})
        sandbox_url = f"http://127.0.0.1:{ports.sandbox}"
        api_url = f"http://127.0.0.1:{ports.api}"
        stack = DevStack(home=home, env=env, ports=ports, say=lambda line: print(f"  {line}"))
        print(f"starting a stack in {home} ...", flush=True)
        stack.start()
        env = stack.env
    try:
        results = asyncio.run(measure(args, env, api_url, sandbox_url))
    finally:
        if stack is not None:
            stack.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "purchases.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
