"""`entrega reconcile --providers` recovers now and says what; the pruning schedule's workflow
forgets only old webhook signatures."""

from __future__ import annotations

import json

import pytest

from contracts.reconcile import PruneInput
from tests.sagas.conftest import cli_env, run_cli, run_cli_capturing
from tests.support import free_port
from workflows.prune_signatures import PruneWebhookSignaturesWorkflow

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def test_reconcile_providers_prints_what_it_recovered(stack, database_url) -> None:
    """An operator's run recovers a payment whose notification was lost and names its order."""
    await stack.sandbox.fault("webhooks", "mercadopago", drop=True)
    payment_id = await stack.mp_payment()
    await stack.mp_notify(payment_id)
    env = cli_env(
        database_url, stack.sandbox.url, stack.client.service_client.config.target_host
    ) | {"TEMPORAL_TASK_QUEUE": stack.settings.temporal_task_queue}
    code, output = await run_cli("reconcile", "--providers", **env)
    assert code == 0, output
    assert f"recovered purchase:mercadopago:{payment_id}" in output
    assert "mercadopago: read 1 payments in 1 pages, recovered 1" in output
    await stack.wait_stage(f"purchase:mercadopago:{payment_id}", "completed")

    code, output = await run_cli("reconcile", "--providers", "--json", **env)
    assert code == 0
    assert [r["recovered_count"] for r in json.loads(output)] == [0, 0]


async def test_pruning_forgets_only_old_signatures(stack) -> None:
    """Signatures older than the window are deleted; a fresh one still refuses its replay."""
    async with stack.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO webhook_signatures (signature, seen_at) VALUES"
            " ('old', now() - interval '1 hour'), ('fresh', now())"
        )
    pruned = await stack.client.execute_workflow(
        PruneWebhookSignaturesWorkflow.run,
        PruneInput(),
        id=f"prune-{stack.settings.temporal_task_queue}",
        task_queue=stack.settings.temporal_task_queue,
    )
    assert pruned == 1
    async with stack.pool.connection() as conn:
        cur = await conn.execute("SELECT signature FROM webhook_signatures")
        assert await cur.fetchall() == [("fresh",)]


@pytest.mark.parametrize("args", [["reconcile"], ["reconcile", "--providers"]])
async def test_temporal_unreachable_is_one_line(args, database_url) -> None:
    """Without Temporal (it says which sagas are still running, and runs the reconciliation),
    `entrega reconcile` says where it could not connect, in one line, and exits 1."""
    address = f"127.0.0.1:{free_port()}"
    code, _, err = await run_cli_capturing(
        *args, TEMPORAL_ADDRESS=address, DATABASE_URL=database_url
    )
    assert (code, err.strip()) == (1, f"cannot reach Temporal at {address}")
