"""A worker killed with SIGKILL mid-flight: after a restart every order completes, once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRETS
from tests.purchases.stack import Stack, stack_settings
from tests.support import serve

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 5


def _start_worker(settings) -> subprocess.Popen[bytes]:
    """`python -m cli worker` with the test's database, Temporal server, queue and sandbox."""
    env = {
        **os.environ,
        **{name.upper(): value for name, value in TEST_SECRETS.items()},
        "ENTREGA_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "MERCADOPAGO_API_URL": settings.mercadopago_api_url,
        "LOVABLE_FUNCTIONS_URL": settings.lovable_functions_url,
        "RESEND_API_URL": settings.resend_api_url,
        "SUPABASE_URL": settings.supabase_url,
        "HTTP_TIMEOUT_SECONDS": "2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_sigkilled_worker_loses_nothing(
    database_url, pool, temporal_client, sandbox, task_queue
) -> None:
    """Orders in flight when the worker dies complete after a restart with one of everything."""
    from api.app import create_app

    settings = stack_settings(
        database_url,
        sandbox.url,
        temporal_client,
        task_queue,
        purchase_step_timeout_seconds=3,
    )
    # Slow user creation, so that the kill lands while calls are in flight.
    await sandbox.fault("lovable", "create_user", latency_ms=1500)
    worker = _start_worker(settings)
    try:
        async with serve(create_app(settings, pool=pool, temporal=temporal_client)) as url:
            await sandbox.set_gateway(url)
            stack = Stack(settings, pool, temporal_client, sandbox, None)  # type: ignore[arg-type]
            ids = []
            for n in range(ORDERS):
                payment_id = await stack.mp_payment(email=f"cliente{n}@example.com")
                assert (await stack.mp_notify(payment_id))["status_code"] == 200
                ids.append(f"purchase:mercadopago:{payment_id}")
            for _ in range(200):
                orders = [await stack.order(i) for i in ids]
                if any(o and o.stage == "creating_user" for o in orders):
                    break
                await asyncio.sleep(0.05)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            worker = _start_worker(settings)
            for order_id in ids:
                await stack.wait_stage(order_id, "completed", seconds=60)
            expected = sorted(
                (f"cliente{n}@example.com", kind)
                for n in range(ORDERS)
                for kind in ("credentials", "purchase_confirmation")
            )
            for _ in range(100):  # confirmations retry on their own schedule
                state = await sandbox.state()
                sent = sorted((str(e["to"][0]), e["tags"]["email_type"]) for e in state["emails"])
                if len(sent) >= len(expected):
                    break
                await asyncio.sleep(0.1)
            assert sent == expected
            assert len(state["lovable_users"]) == ORDERS
            for n in range(ORDERS):
                assert (await stack.login(f"cliente{n}@example.com")).status_code == 200
    finally:
        worker.kill()
        worker.wait()
