"""An Asaas confirmation whose webhook is lost still starts its period at the next scheduled
reconciliation, through the payment's own workflow; the webhook arriving late changes nothing."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from contracts.reconcile import ReconcileInput
from db import profiles as db_profiles
from tests.reconcile.conftest import eventually
from tests.support import serve
from workflows.reconcile_asaas import ReconcileAsaasWorkflow

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]
INTERVAL = timedelta(seconds=3)


async def periods(pool) -> list[tuple[str, datetime]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT payment_id, period_start FROM subscription_periods ORDER BY payment_id"
        )
        return list(await cur.fetchall())


async def test_dropped_confirmation_starts_the_period_once(stack, pool, start_schedules) -> None:
    """PAYMENT_CONFIRMED is dropped; within one interval the period starts on the due date, with
    a recovered_by_reconcile entry; the late webhook is then applied as already applied."""
    account = await stack.registered(0)
    assert (await stack.checkout(account["auth_user_id"])).status_code == 201
    [payment] = (await stack.sandbox.state())["asaas_payments"]
    await stack.sandbox.fault("webhooks", "asaas", drop=True)
    sent = await stack.sandbox.http.post(
        f"/_sandbox/asaas/payments/{payment['id']}/events", json={"event": "PAYMENT_CONFIRMED"}
    )
    assert sent.json()["dropped"] is True

    settings = stack.app.state.settings.model_copy(update={"reconcile_interval": INTERVAL})
    await start_schedules(stack.temporal, settings)
    [(paid, start)] = await eventually(lambda: periods(pool), seconds=INTERVAL.total_seconds() * 3)
    due = date.fromisoformat(payment["dueDate"])
    assert paid == payment["id"] and start.date() == due
    assert ("recovered_by_reconcile", None) in await stack.journal(f"asaas-payment:{paid}")
    async with pool.connection() as conn:
        before = await db_profiles.get_by_auth_user_id(conn, account["auth_user_id"])

    await stack.sandbox.clear_faults()
    async with serve(stack.app) as gateway:
        await stack.sandbox.set_gateway(gateway)
        late = await stack.sandbox.http.post(
            f"/_sandbox/asaas/payments/{payment['id']}/events",
            json={"event": "PAYMENT_CONFIRMED"},
        )
        assert late.json()["status_code"] == 200
        outcome = await stack.settle_payment(payment["id"])
    assert outcome.outcome == "already_applied"
    assert await periods(pool) == [(paid, start)]
    async with pool.connection() as conn:
        after = await db_profiles.get_by_auth_user_id(conn, account["auth_user_id"])
    assert (after.current_period_start, after.current_period_end, after.plan_id) == (
        before.current_period_start,
        before.current_period_end,
        before.plan_id,
    )


async def test_applied_and_foreign_charges_are_not_handed_off(stack, pool) -> None:
    """A charge whose period is recorded, and a paid charge of a subscription no profile holds,
    are read and left alone."""
    account = await stack.registered(0)
    subscription_id = (await stack.checkout(account["auth_user_id"])).json()["subscription_id"]
    async with serve(stack.app) as gateway:
        await stack.sandbox.set_gateway(gateway)
        paid = await stack.sandbox.http.post(
            f"/_sandbox/asaas/subscriptions/{subscription_id}/payments",
            json={"status": "RECEIVED"},
        )
        await stack.settle_payment(paid.json()["id"])
    assert len(await periods(pool)) == 1
    settings = stack.app.state.settings

    async def run(n: int) -> None:
        result = await stack.temporal.execute_workflow(
            ReconcileAsaasWorkflow.run,
            ReconcileInput(),
            id=f"reconcile-asaas-now-{settings.temporal_task_queue}-{n}",
            task_queue=settings.temporal_task_queue,
        )
        assert (result.read, result.recovered_count) == (1, 0)

    await run(1)  # its period is recorded
    async with pool.connection() as conn:
        await conn.execute("UPDATE profiles SET subscription_id = NULL")
        await conn.execute("DELETE FROM subscription_periods")
    await run(2)  # no profile holds its subscription
    assert await periods(pool) == []
