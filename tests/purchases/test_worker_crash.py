"""A worker killed with SIGKILL mid-flight: after a restart every order completes, once."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import pytest

from tests.purchases.stack import Stack, stack_settings, worker_process
from tests.support import serve

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

ORDERS = 5


def _start_worker(settings) -> subprocess.Popen[bytes]:
    return worker_process(settings, HTTP_TIMEOUT_SECONDS="2")


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
