"""Mercado Pago payments whose notifications never arrive are recovered by the scheduled
reconciliation, through the gateway's own hand-off, within one interval."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from temporalio.client import WorkflowFailureError

from contracts.reconcile import ReconcileInput, ReconcileResult
from tests.reconcile.conftest import INTERVAL, eventually
from workflows.reconcile_mercadopago import ReconcileMercadoPagoWorkflow

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

PAYMENTS = 50
# Provisioning 50 orders (two e-mails and a user each) on a loaded machine, after the hand-off.
PROVISIONING_SLACK = 90


async def stages(stack, order_ids: list[str]) -> Counter[str]:
    async with stack.pool.connection() as conn:
        cur = await conn.execute("SELECT stage FROM orders WHERE order_id = ANY(%s)", (order_ids,))
        return Counter(row[0] for row in await cur.fetchall())


async def recovered_events(stack) -> Counter[str]:
    async with stack.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT workflow_id FROM integration_logs WHERE event = 'recovered_by_reconcile'"
        )
        return Counter(row[0] for row in await cur.fetchall())


async def run_now(stack) -> ReconcileResult:
    """One reconciliation run, as `entrega reconcile --providers` starts it."""
    return await stack.client.execute_workflow(
        ReconcileMercadoPagoWorkflow.run,
        ReconcileInput(page_size=20),
        id=f"reconcile-now-{stack.settings.temporal_task_queue}-{asyncio.get_running_loop().time()}",
        task_queue=stack.settings.temporal_task_queue,
    )


async def test_fifty_dropped_approvals_all_complete_once(stack, start_schedules) -> None:
    """50 approved payments whose notifications are all dropped: the schedule hands each one off
    within one interval, and every order completes with one user and one e-mail of each kind."""
    await stack.sandbox.fault("webhooks", "mercadopago", drop=True)
    emails = [f"cliente{n}@example.com" for n in range(PAYMENTS)]
    ids = [await stack.mp_payment(email=email) for email in emails]
    for payment_id in ids:
        assert (await stack.mp_notify(payment_id))["dropped"] is True
    order_ids = [f"purchase:mercadopago:{i}" for i in ids]
    assert await stages(stack, order_ids) == Counter()

    loop = asyncio.get_running_loop()
    started = loop.time()
    await start_schedules(stack.client, stack.settings)
    recovered = await eventually(
        lambda: _all_recovered(stack, order_ids), seconds=INTERVAL.total_seconds() * 3
    )
    # Handed off within one interval (plus the run's own time), not at some later run.
    assert loop.time() - started < INTERVAL.total_seconds() * 3, recovered
    done = await eventually(lambda: _all_completed(stack, order_ids), seconds=PROVISIONING_SLACK)
    assert done == Counter({"completed": PAYMENTS})

    state = await stack.sandbox.state()
    assert sorted(u["email"] for u in state["lovable_users"]) == sorted(emails)
    kinds = Counter((str(e["to"]), e["tags"]["email_type"]) for e in state["emails"])
    assert len(kinds) == 2 * PAYMENTS and set(kinds.values()) == {1}


async def _all_recovered(stack, order_ids: list[str]) -> Counter[str] | None:
    events = await recovered_events(stack)
    return events if set(order_ids) <= set(events) else None


async def _all_completed(stack, order_ids: list[str]) -> Counter[str] | None:
    found = await stages(stack, order_ids)
    return found if found.get("completed") == len(order_ids) else None


async def test_dropped_refund_revokes_within_one_interval(stack, start_schedules) -> None:
    """A refund whose notification is dropped still revokes access at the next run."""
    payment_id = await stack.mp_payment(email="rui@example.com")
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "completed")
    await stack.sandbox.fault("webhooks", "mercadopago", drop=True)
    await stack.mp_set_status(payment_id, "refunded")
    assert (await stack.mp_notify(payment_id))["dropped"] is True

    await start_schedules(stack.client, stack.settings)
    order = await stack.wait_stage(order_id, "revoked", seconds=INTERVAL.total_seconds() * 3)
    assert order.revoked_at is not None
    assert [u["active"] for u in (await stack.sandbox.state())["lovable_users"]] == [False]
    assert (await recovered_events(stack))[order_id] >= 1


async def test_already_handled_payments_cost_only_the_page_reads(stack) -> None:
    """Payments the orders already reflect (completed, revoked, still pending) are read and left
    alone: nothing handed off, nothing journaled."""
    handled = []
    for n, status in enumerate(["approved", "approved", "pending"]):
        payment_id = await stack.mp_payment(status=status, email=f"h{n}@example.com")
        await stack.mp_notify(payment_id)
        handled.append(payment_id)
    await stack.wait_stage(f"purchase:mercadopago:{handled[0]}", "completed")
    await stack.wait_stage(f"purchase:mercadopago:{handled[1]}", "completed")
    await stack.wait_stage(f"purchase:mercadopago:{handled[2]}", "awaiting_payment")

    result = await run_now(stack)
    assert (result.read, result.pages, result.recovered_count) == (3, 1, 0)
    assert await recovered_events(stack) == Counter()


async def test_provider_outage_fails_the_run_and_the_next_catches_up(stack) -> None:
    """Mercado Pago refusing the search fails the run visibly (no silent success); the next run,
    over the same window, recovers the payment."""
    await stack.sandbox.fault("webhooks", "mercadopago", drop=True)
    payment_id = await stack.mp_payment()
    await stack.mp_notify(payment_id)
    await stack.sandbox.fault("mercadopago", "search_payments", status=403)
    with pytest.raises(WorkflowFailureError):
        await run_now(stack)
    await stack.sandbox.clear_faults()
    result = await run_now(stack)
    assert result.recovered == [f"purchase:mercadopago:{payment_id}"]
    await stack.wait_stage(f"purchase:mercadopago:{payment_id}", "completed")


async def test_payments_for_other_products_never_become_orders(stack) -> None:
    """The merchant's other sales (another product id, or no product at a price Entrega does not
    charge) are left alone; only the catalogue's product is recovered."""
    await stack.sandbox.fault("webhooks", "mercadopago", drop=True)
    ours = await stack.mp_payment()
    others = []
    for fields in ({"product_id": "curso-de-violao"}, {"product_id": None, "amount": "12.34"}):
        made = await stack.sandbox.http.post(
            "/_sandbox/mercadopago/payments",
            json={"payer_email": "outra@example.com", "amount": "49.90", **fields},
        )
        others.append(f"purchase:mercadopago:{made.json()['id']}")
    result = await run_now(stack)
    assert (result.read, result.recovered) == (3, [f"purchase:mercadopago:{ours}"])
    await stack.wait_stage(f"purchase:mercadopago:{ours}", "completed")
    assert [await stack.order(o) for o in others] == [None, None]
