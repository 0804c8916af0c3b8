"""Temporal stopped while notifications arrive: the gateway answers 503 to each, the provider
never sends them again, and once Temporal is back on the same database the schedule recovers
every order."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from contracts import search_attributes
from providers.clients import open_provider_clients
from tests.conftest import TEMPORAL_BIN, converter_for_tests
from tests.purchases.stack import Stack, stack_settings
from tests.support import free_port, serve
from worker import WORKFLOWS, build_activities, build_email_worker
from workflows.schedules import ensure_schedules

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]
ORDERS = 3


async def _temporal(db_file: Path, port: int) -> WorkflowEnvironment:
    """A dev server of this test's own, keeping its state in `db_file`."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_BIN),
        dev_server_database_filename=str(db_file),
        port=port,
        data_converter=converter_for_tests(),
        search_attributes=list(search_attributes.ALL),
        dev_server_log_level="error",
    )


async def test_orders_answered_503_are_recovered_after_temporal_returns(
    tmp_path, database_url, pool, sandbox, task_queue
) -> None:
    """While Temporal is down every notification gets 503 and nothing is lost: after a restart
    on the same database file the schedule (kept in it) completes each order once."""
    db_file, port = tmp_path / "temporal.db", free_port()
    first = await _temporal(db_file, port)
    settings = stack_settings(
        database_url, sandbox.url, first.client, task_queue, reconcile_interval="3s"
    )
    # The server's own schedules, gone with its database file at the end.
    await ensure_schedules(first.client, settings)
    await first.shutdown()

    # The gateway connects to Temporal lazily, as in production.
    async with serve(create_app(settings, pool=pool)) as gateway:
        await sandbox.set_gateway(gateway)
        stack = Stack(settings, pool, first.client, sandbox, None)  # type: ignore[arg-type]
        ids = []
        for n in range(ORDERS):
            payment_id = await stack.mp_payment(email=f"cliente{n}@example.com")
            assert (await stack.mp_notify(payment_id))["status_code"] == 503
            ids.append(f"purchase:mercadopago:{payment_id}")
    assert [await stack.order(i) for i in ids] == [None] * ORDERS

    second = await _temporal(db_file, port)
    try:
        stack.client = second.client
        async with open_provider_clients(settings) as providers:
            async with (
                Worker(
                    second.client,
                    task_queue=task_queue,
                    workflows=list(WORKFLOWS),
                    activities=build_activities(settings, pool, providers),
                ),
                build_email_worker(second.client, settings, pool, providers),
            ):
                for order_id in ids:
                    await stack.wait_stage(order_id, "completed", seconds=60)
        state = await sandbox.state()
        assert len(state["lovable_users"]) == ORDERS
        assert len([e for e in state["emails"] if e["tags"]["email_type"] == "credentials"]) == 3
    finally:
        await second.shutdown()
