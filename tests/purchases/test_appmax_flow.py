"""AppMax purchases end to end: Apphooks grant access, refunds revoke it, strangers are refused."""

from __future__ import annotations

import pytest

from db import products

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def test_paid_order_reaches_the_customer_and_refund_revokes(stack) -> None:
    """OrderPaid provisions the customer; OrderRefund afterwards deactivates them."""
    async with stack.pool.connection() as conn:
        await products.add_product(
            conn, product_id="entrega-anual", name="Anual", currency="BRL", price_cents=9700, by="t"
        )
    sent = await stack.apphook(
        "OrderPaid", total="97.00", payment_type="CreditCard", product_id="entrega-anual"
    )
    assert sent["status_code"] == 200, sent
    order_id = f"purchase:appmax:{sent['order_id']}"
    order = await stack.wait_stage(order_id, "completed")
    assert order.customer_email == "bia@example.com" and order.amount_cents == 9700
    assert (await stack.login("bia@example.com")).status_code == 200
    refund = await stack.apphook("OrderRefund", order_id=sent["order_id"])
    assert refund["status_code"] == 200
    await stack.wait_stage(order_id, "revoked")
    assert (await stack.login("bia@example.com")).status_code == 403


async def test_duplicate_apphooks_make_one_user(stack) -> None:
    """The same granting Apphook three times makes one user and one credentials e-mail."""
    first = await stack.apphook("OrderApproved")
    for event in ("OrderPaid", "OrderApproved"):
        await stack.apphook(event, order_id=first["order_id"])
    await stack.wait_stage(f"purchase:appmax:{first['order_id']}", "completed")
    state = await stack.sandbox.state()
    assert len(state["lovable_users"]) == 1
    credentials = [e for e in state["emails"] if e["tags"]["email_type"] == "credentials"]
    assert len(credentials) == 1


async def test_other_events_are_acknowledged_and_ignored(stack) -> None:
    """An event that neither grants nor revokes answers 200 and records nothing."""
    sent = await stack.apphook("OrderBilletCreated")
    assert sent["status_code"] == 200 and sent["response"] == {"status": "ignored"}
    assert await stack.order(f"purchase:appmax:{sent['order_id']}") is None


async def test_wrong_token_is_refused(stack) -> None:
    """An Apphook without our URL token answers 401."""
    body = {"event": "OrderPaid", "event_type": "", "data": {"id": 7, "customer": {}}}
    for params in ({"token": "wrong"}, {}):
        response = await stack.gateway.post("/webhooks/appmax", params=params, json=body)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_token"


async def test_refund_of_an_unknown_order_cancels_it(stack) -> None:
    """A refund arriving before any payment event records the order as cancelled, no user."""
    sent = await stack.apphook("OrderRefund")
    assert sent["status_code"] == 200
    await stack.wait_stage(f"purchase:appmax:{sent['order_id']}", "cancelled")
    assert not (await stack.sandbox.state())["lovable_users"]
