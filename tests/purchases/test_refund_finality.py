"""A refund is final for its order: across runs, re-sent notifications and parked stages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.purchases.fakes import search_stage
from tests.purchases.stack import purchase_stack, stack_settings

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

BIA = {"firstname": "Bia", "lastname": "Lima", "email": "bia@example.com"}


@pytest.fixture
async def stack(database_url, pool, temporal_client, sandbox, task_queue):
    # Parked orders wait a minute: long enough for a refund to reach them while parked.
    settings = stack_settings(
        database_url, sandbox.url, temporal_client, task_queue, provisioning_retry_schedule="1m"
    )
    async with purchase_stack(settings, pool, temporal_client, sandbox) as stack:
        yield stack


async def closed(stack, order_id: str) -> Any:
    """The result of the order's latest run, which must close within seconds (a provisioned
    order would keep listening for refunds instead)."""
    return await asyncio.wait_for(stack.client.get_workflow_handle(order_id).result(), 30)


async def assert_never_provisioned(stack, order_id: str, stage: str) -> None:
    order = await stack.order(order_id)
    assert order is not None and order.stage == stage and order.refunded_at is not None
    assert order.encrypted_password is None
    assert await search_stage(stack.client, order_id) == stage
    state = await stack.sandbox.state()
    assert not state["lovable_users"]
    assert not [e for e in state["emails"] if e["tags"]["email_type"] == "credentials"]


async def test_appmax_paid_after_refund_starts_no_provisioning(stack) -> None:
    """OrderRefund first closes the order cancelled; a later OrderPaid (a new run) and its
    re-send leave it cancelled: no user, no credentials e-mail."""
    refund = await stack.apphook("OrderRefund", customer=BIA, total="49.90")
    order_id = f"purchase:appmax:{refund['order_id']}"
    await closed(stack, order_id)
    paid = await stack.apphook("OrderPaid", order_id=refund["order_id"])
    assert paid["status_code"] == 200, paid
    result = await closed(stack, order_id)
    assert result["stage"] == "cancelled"
    again = await stack.apphook("OrderPaid", order_id=refund["order_id"])
    assert again["response"]["status"] == "duplicate"
    await assert_never_provisioned(stack, order_id, "cancelled")


async def test_mercadopago_approved_after_refund_starts_no_provisioning(stack) -> None:
    """A payment first seen refunded closes cancelled; a notification saying approved later
    (a new run) does not provision it."""
    payment_id = await stack.mp_payment(status="refunded", email="bia@example.com")
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await closed(stack, order_id)
    await stack.mp_set_status(payment_id, "approved")
    await stack.mp_notify(payment_id)
    result = await closed(stack, order_id)
    assert result["stage"] == "cancelled"
    await assert_never_provisioned(stack, order_id, "cancelled")


async def test_refund_while_parked_at_user_cancels_for_good(stack) -> None:
    """A refund reaching an order parked in failed_at_user cancels it; Lovable healing and an
    operator's retry afterwards provision nothing, and the stored password is gone."""
    await stack.sandbox.fault("lovable", "create_user", status=503)
    payment_id = await stack.mp_payment(email="bia@example.com")
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    parked = await stack.wait_stage(order_id, "failed_at_user")
    assert parked.encrypted_password is not None
    await stack.mp_set_status(payment_id, "refunded")
    await stack.mp_notify(payment_id)
    await stack.wait_stage(order_id, "cancelled")
    await stack.sandbox.clear_faults()
    await stack.gateway.post(
        f"/api/v1/admin/orders/{order_id}/retry",
        headers={"authorization": "Bearer test-admin-token"},
    )
    await closed(stack, order_id)
    await assert_never_provisioned(stack, order_id, "cancelled")


async def test_refund_while_parked_at_email_revokes_and_erases_the_password(stack) -> None:
    """A refund reaching an order parked in failed_at_email revokes it: the user is
    deactivated, the credentials never go out, and the encrypted password is erased."""
    await stack.sandbox.fault("resend", "send_batch", status=503)
    paid = await stack.apphook("OrderPaid", customer=BIA, total="49.90")
    order_id = f"purchase:appmax:{paid['order_id']}"
    parked = await stack.wait_stage(order_id, "failed_at_email")
    assert parked.encrypted_password is not None and parked.lovable_user_id
    await stack.apphook("OrderRefund", order_id=paid["order_id"])
    order = await stack.wait_stage(order_id, "revoked")
    assert order.encrypted_password is None and order.refunded_at is not None
    await stack.sandbox.clear_faults()
    await closed(stack, order_id)
    state = await stack.sandbox.state()
    assert [u["active"] for u in state["lovable_users"]] == [False]
    assert not state["emails"]  # not even the order-received e-mail, after the refund


async def test_appmax_paid_after_refund_at_a_refused_price_stays_cancelled(stack) -> None:
    """OrderRefund first, then an OrderPaid whose price the catalogue refuses: the new run ends
    at once and the order stays `cancelled`, not parked `failed_permanent` for a person."""
    refund = await stack.apphook("OrderRefund", customer=BIA, total="49.90")
    order_id = f"purchase:appmax:{refund['order_id']}"
    await closed(stack, order_id)
    paid = await stack.apphook(
        "OrderPaid", order_id=refund["order_id"], total="9.90", total_products="9.90"
    )
    assert paid["status_code"] == 200, paid
    result = await closed(stack, order_id)
    assert result["stage"] == "cancelled"
    await assert_never_provisioned(stack, order_id, "cancelled")
