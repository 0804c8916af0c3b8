"""The intake inbox (api/intake.py): a notice Temporal is too slow to take is acknowledged from
PostgreSQL and forwarded, and none is lost or provisioned twice.

WEBHOOK_HANDOFF_BUDGET_SECONDS=0 makes Temporal always too slow: every notice goes through the
inbox, as during a sale's burst."""

from __future__ import annotations

import asyncio
import time

import pytest

from api.deps import TemporalConnection
from api.intake import Intake
from contracts.purchases import PaymentNotice
from db import intake, orders
from telemetry import metrics
from tests.purchases.stack import purchase_stack, stack_settings

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


@pytest.fixture
async def stack(database_url, pool, temporal_client, sandbox, task_queue):
    settings = stack_settings(
        database_url, sandbox.url, temporal_client, task_queue, webhook_handoff_budget_seconds=0
    )
    async with purchase_stack(settings, pool, temporal_client, sandbox) as stack:
        yield stack


async def _backlog(pool) -> int:  # type: ignore[no-untyped-def]
    async with pool.connection() as conn:
        count, _ = await intake.backlog(conn)
    return count


async def test_a_notice_acknowledged_from_the_inbox_reaches_the_customer(stack, pool) -> None:
    """200 before Temporal has the notice; the forwarder hands it off; the order completes once,
    and the inbox is empty again."""
    inboxed = metrics.NOTICES_INBOXED._value.get()
    payment_id = await stack.mp_payment()
    delivery = await stack.mp_notify(payment_id)
    assert delivery["status_code"] == 200, delivery
    assert metrics.NOTICES_INBOXED._value.get() == inboxed + 1
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "completed")
    assert await _backlog(pool) == 0
    state = await stack.sandbox.state()
    assert len(state["lovable_users"]) == 1
    assert sorted(e["tags"]["email_type"] for e in state["emails"]) == [
        "credentials",
        "purchase_confirmation",
    ]


async def test_a_burst_is_acknowledged_and_every_order_provisioned(stack, pool) -> None:
    """Twenty notices at once, each delivered twice: all acknowledged, each order completed with
    one user."""
    payments = [await stack.mp_payment(email=f"cliente{n}@example.com") for n in range(20)]
    deliveries = await asyncio.gather(
        *(stack.mp_notify(p) for p in payments), *(stack.mp_notify(p) for p in payments)
    )
    assert {d["status_code"] for d in deliveries} == {200}
    for payment_id in payments:
        await stack.wait_stage(f"purchase:mercadopago:{payment_id}", "completed", seconds=60)
    assert await _backlog(pool) == 0
    assert len((await stack.sandbox.state())["lovable_users"]) == 20


async def test_a_notice_left_by_a_process_that_died_is_forwarded(stack, pool) -> None:
    """A row in the inbox that no request is waiting on (its API process died after the
    acknowledgement) is forwarded by the forwarder's next look."""
    payment_id = await stack.mp_payment(email="rosa@example.com")
    async with pool.connection() as conn:
        await intake.put(conn, "mercadopago", payment_id, PaymentNotice(action="payment.created"))
    await stack.wait_stage(f"purchase:mercadopago:{payment_id}", "completed")
    assert await _backlog(pool) == 0


async def test_a_notice_temporal_refuses_stays_in_the_inbox_and_blocks_nothing(stack, pool) -> None:
    """A forward Temporal refuses (here a notice over its 2 MB payload limit) keeps its row,
    with the error and a later next attempt; the notice beside it is forwarded all the same."""
    refused_id = await stack.mp_payment(email="lia@example.com")
    payment_id = await stack.mp_payment(email="noa@example.com")
    async with pool.connection() as conn:
        await intake.put(conn, "mercadopago", refused_id, PaymentNotice(action="x" * 3_000_000))
        await intake.put(conn, "mercadopago", payment_id, PaymentNotice(action="payment.created"))
    await stack.wait_stage(f"purchase:mercadopago:{payment_id}", "completed")
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT provider_order_id, attempts, last_error IS NOT NULL, "
            # Postponed past its arrival (not `> now()`: on a loaded machine the other order
            # may take longer to complete than the first postponement lasts).
            "next_attempt_at > received_at FROM webhook_inbox"
        )
        rows = await cur.fetchall()
    assert len(rows) == 1
    [(order, attempts, has_error, later)] = rows
    assert (order, has_error, later) == (refused_id, True, True)
    assert attempts >= 1


async def test_an_inboxed_notice_is_forwarded_as_soon_as_its_claim_commits(
    database_url, pool, temporal_client, sandbox, task_queue, monkeypatch
) -> None:
    """The forwarder is woken once the request's transaction has committed the inbox row. Woken
    before (as it was), it looked while the row was still invisible, found nothing, and slept
    until its next poll: an isolated notice waited a second. Here the poll is a minute away, so
    only the wake can forward it; no app here, so no other forwarder can take the row."""
    monkeypatch.setattr("api.intake._POLL_SECONDS", 60.0)
    settings = stack_settings(
        database_url, sandbox.url, temporal_client, task_queue, webhook_handoff_budget_seconds=0
    )
    forwarder = Intake(settings, pool, TemporalConnection(settings, temporal_client))
    forwarding = asyncio.create_task(forwarder.forward())
    try:
        await asyncio.sleep(0.1)  # it has looked at the empty inbox and waits
        async with orders.signature_once(pool, f"test-commit:{task_queue}") as claim:
            await forwarder.deliver(
                claim,
                temporal_client,
                provider="mercadopago",
                provider_order_id=f"commit-{task_queue}",
                notice=PaymentNotice(action="payment.created"),
            )
            await asyncio.sleep(0.3)  # the request still holds its transaction open
        committed = time.monotonic()
        while await _backlog(pool):
            assert time.monotonic() - committed < 10, "forwarded only at the next poll"
            await asyncio.sleep(0.05)
    finally:
        forwarding.cancel()
