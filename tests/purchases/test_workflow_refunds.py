"""A refund is final across workflow runs (time-skipping server, fake activities)."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client

from contracts.purchases import (
    Payment,
    PaymentNotice,
    Provider,
    PurchaseConfig,
    PurchaseResult,
)
from tests.purchases.fakes import FAST, approved
from workflows.purchase_client import hand_off

pytestmark = pytest.mark.timeskip

CONFIG = PurchaseConfig(step_attempts=2, step_initial_interval=FAST)

REFUND = Payment(state="refunded", provider_status="estornado")


async def run(
    client: Client, task_queue: str, provider: Provider, order: str, notice: PaymentNotice
) -> PurchaseResult:
    handle = await hand_off(
        client,
        provider=provider,
        provider_order_id=order,
        notice=notice,
        config=CONFIG,
        task_queue=task_queue,
    )
    result: PurchaseResult = await handle.result()
    return result


async def test_appmax_paid_in_a_new_run_after_refund_stays_cancelled(
    client, task_queue, world
) -> None:
    """OrderRefund closes the order cancelled; OrderPaid afterwards starts a run that finds the
    order refunded and ends at once, creating nothing."""
    order = uuid.uuid4().hex[:10]
    first = await run(
        client, task_queue, "appmax", order, PaymentNotice(action="OrderRefund", payment=REFUND)
    )
    assert first.stage == "cancelled"
    paid = PaymentNotice(action="OrderPaid", payment=approved())
    assert (await run(client, task_queue, "appmax", order, paid)).stage == "cancelled"
    assert not world.users and not world.emails


async def test_mercadopago_approved_in_a_new_run_after_refund_stays_cancelled(
    client, task_queue, world
) -> None:
    """A payment seen refunded, then (new run) reported approved, is never provisioned."""
    order = uuid.uuid4().hex[:10]
    world.payments[order] = Payment(state="refunded", provider_status="refunded")
    notice = PaymentNotice(action="payment.updated")
    assert (await run(client, task_queue, "mercadopago", order, notice)).stage == "cancelled"
    world.payments[order] = approved()
    assert (await run(client, task_queue, "mercadopago", order, notice)).stage == "cancelled"
    assert not world.users and not world.emails
