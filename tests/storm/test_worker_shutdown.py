"""A rolling deploy's SIGTERM lets the attempt in flight finish instead of cancelling it."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import pytest

from tests.purchases.stack import Stack, stack_settings, worker_process
from tests.support import serve

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


def _start_worker(settings, **extra: str) -> subprocess.Popen[bytes]:
    return worker_process(
        settings, PURCHASE_STEP_TIMEOUT_SECONDS="10", HTTP_TIMEOUT_SECONDS="8", **extra
    )


async def _create_user_attempts(pool, order_id: str) -> list[tuple[str, int | None]]:
    async with pool.connection() as conn:
        rows = await conn.execute(
            "SELECT event, attempt FROM integration_logs WHERE workflow_id = %s "
            "AND stage = 'creating_user' AND event IN ('attempt', 'attempt_failed') ORDER BY id",
            (order_id,),
        )
        return [(row[0], row[1]) for row in await rows.fetchall()]


async def test_sigterm_lets_create_user_finish(
    database_url, pool, temporal_client, sandbox, task_queue
) -> None:
    """SIGTERM during `create_user` (slowed to 3 s) lets that attempt complete: one user, one
    attempt, and the order completes after the next worker starts."""
    from api.app import create_app

    settings = stack_settings(
        database_url, sandbox.url, temporal_client, task_queue, purchase_step_timeout_seconds=10
    )
    await sandbox.fault("lovable", "create_user", latency_ms=3000)
    worker = _start_worker(settings, WORKER_GRACEFUL_SHUTDOWN="20s")
    try:
        async with serve(create_app(settings, pool=pool, temporal=temporal_client)) as url:
            await sandbox.set_gateway(url)
            stack = Stack(settings, pool, temporal_client, sandbox, None)  # type: ignore[arg-type]
            payment_id = await stack.mp_payment(email="deploy@example.com")
            assert (await stack.mp_notify(payment_id))["status_code"] == 200
            order_id = f"purchase:mercadopago:{payment_id}"
            for _ in range(400):
                if await _create_user_attempts(pool, order_id):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the request is now at Lovable, 2.5 s from its answer
            worker.send_signal(signal.SIGTERM)
            await asyncio.to_thread(worker.wait, 30)
            order = await stack.order(order_id)
            assert order is not None and order.lovable_user_id, "the attempt was cut short"
            worker = _start_worker(settings)
            await stack.wait_stage(order_id, "completed", seconds=60)
            assert await _create_user_attempts(pool, order_id) == [("attempt", 1)]
            assert len((await sandbox.state())["lovable_users"]) == 1
    finally:
        worker.kill()
        worker.wait()
