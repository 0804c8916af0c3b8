"""A Mercado Pago reconciliation run over already-handled payments costs pages, not calls per
payment.

Starts its own stack in a temp dir (embedded PostgreSQL, the Temporal dev server, the sandbox
and a worker, in this process), puts N approved payments in the sandbox and N completed orders in
the database, then times one `ReconcileMercadoPagoWorkflow` run and counts the sandbox requests
it made by path. Baseline, measured in the same run: reading 1,000 of those payments one by one
(`GET /v1/payments/{id}`), which a per-payment check would need.

    .venv/bin/python -m bench.reconcile [--payments 10000] [--page-size 100]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import free_port, local_database, local_temporal, serve, write_result


class CountingApp:
    """The sandbox's ASGI app, counting requests by method and route shape."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith("/mercadopago/v1/payments/") and not path.endswith("/search"):
                path = "/mercadopago/v1/payments/{id}"
            self.calls[f"{scope['method']} {path}"] += 1
        await self.app(scope, receive, send)


def _payment(payment_id: str, now: str) -> dict[str, Any]:
    return {
        "id": int(payment_id),
        "date_created": now,
        "date_approved": now,
        "date_last_updated": now,
        "status": "approved",
        "status_detail": "accredited",
        "currency_id": "BRL",
        "transaction_amount": 49.9,
        "payment_method_id": "pix",
        "payer": {"email": f"c{payment_id}@example.com", "first_name": "C", "last_name": "B"},
        "metadata": {},
        "additional_info": {"items": [{"id": "entrega-acesso", "quantity": "1"}]},
    }


async def measure(payments: int, page_size: int) -> dict[str, Any]:
    from temporalio.contrib.pydantic import pydantic_data_converter

    from contracts.reconcile import ReconcileInput
    from db.pool import open_pool
    from devstack import DEV_SECRETS, sandbox_env
    from providers.clients import open_provider_clients
    from sandbox.app import create_app as create_sandbox
    from settings import Settings
    from worker import build_worker
    from workflows.reconcile_mercadopago import ReconcileMercadoPagoWorkflow

    async with AsyncExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-reconcile-")))
        database_url = await local_database(stack, home)
        temporal = await local_temporal(stack, pydantic_data_converter)

        secrets_ = {name.lower(): value for name, value in DEV_SECRETS.items()}
        port = free_port()
        sandbox_url = f"http://127.0.0.1:{port}"
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            entrega_env="dev",
            database_url=database_url,
            temporal_task_queue=f"bench-{uuid.uuid4().hex[:8]}",
            **secrets_,
            **{k.lower(): v for k, v in sandbox_env(sandbox_url).items()},
        )
        sandbox_app = create_sandbox(settings)
        counting = CountingApp(sandbox_app)
        await serve(stack, counting, port)

        # N approved payments at MP, each with its completed order: all already handled.
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        ids = sorted({str(secrets.randbelow(9 * 10**10) + 10**10) for _ in range(payments)})
        sandbox_app.state.sandbox.state.mp_payments.update({i: _payment(i, now) for i in ids})
        pool = await open_pool(database_url, max_size=10)
        stack.push_async_callback(pool.close)
        async with pool.connection() as conn:
            await conn.execute(
                """
                INSERT INTO orders (order_id, provider, provider_order_id, stage, completed_at)
                SELECT 'purchase:mercadopago:' || id, 'mercadopago', id, 'completed', now()
                FROM unnest(%(ids)s::text[]) AS id
                """,
                {"ids": ids},
            )

        providers = await stack.enter_async_context(open_provider_clients(settings))
        await stack.enter_async_context(build_worker(temporal.client, settings, pool, providers))

        counting.calls.clear()
        started = time.perf_counter()
        result = await temporal.client.execute_workflow(
            ReconcileMercadoPagoWorkflow.run,
            ReconcileInput(page_size=page_size),
            id=f"bench-reconcile-{uuid.uuid4().hex[:8]}",
            task_queue=settings.temporal_task_queue,
        )
        run_s = time.perf_counter() - started
        run_calls = dict(counting.calls)

        # Baseline: what a per-payment check would cost, 1,000 reads one by one.
        sample = ids[:1000]
        started = time.perf_counter()
        for payment_id in sample:
            await providers.mercadopago.get_payment(payment_id)
        per_payment_s = (time.perf_counter() - started) * 1000 / len(sample)

    per_thousand = 1000 / payments
    return {
        "payments": payments,
        "page_size": page_size,
        "run": {
            "seconds": round(run_s, 3),
            "pages": result.pages,
            "read": result.read,
            "recovered": result.recovered_count,
            "provider_calls": run_calls,
        },
        "per_1000_payments": {
            "provider_calls": round(sum(run_calls.values()) * per_thousand, 2),
            "seconds": round(run_s * per_thousand, 3),
        },
        "baseline_one_read_per_payment_per_1000": {
            "provider_calls": 1000,
            "seconds": round(per_payment_s, 3),
        },
        "ratio_time_baseline_over_run": round(per_payment_s / (run_s * per_thousand), 1),
        "machine": "2 cores shared by PostgreSQL, Temporal, the sandbox, the worker, this load "
        "generator and other engineers' parallel work",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    write_result("reconcile", asyncio.run(measure(args.payments, args.page_size)))


if __name__ == "__main__":
    main()
