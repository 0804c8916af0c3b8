"""Mercado Pago purchases end to end: sandbox notification → gateway → workflow → customer."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def test_approved_payment_reaches_the_customer(stack) -> None:
    """An approved MP payment ends completed, with one user, both e-mails and a working login."""
    payment_id = await stack.mp_payment()
    delivery = await stack.mp_notify(payment_id)
    assert delivery["status_code"] == 200, delivery
    order_id = f"purchase:mercadopago:{payment_id}"
    order = await stack.wait_stage(order_id, "completed")
    assert order.encrypted_password is None and order.lovable_user_id
    assert order.amount_cents == 4990 and order.customer_name == "Ana Souza"
    state = await stack.sandbox.state()
    assert len(state["lovable_users"]) == 1
    kinds = sorted(e["tags"]["email_type"] for e in state["emails"])
    assert kinds == ["credentials", "purchase_confirmation"]
    assert (await stack.login("ana@example.com")).status_code == 200


async def test_pending_then_approved(stack) -> None:
    """A pending payment waits in awaiting_payment, and its approval notice provisions it."""
    payment_id = await stack.mp_payment(status="pending")
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "awaiting_payment")
    assert not (await stack.sandbox.state())["lovable_users"]
    await stack.mp_set_status(payment_id, "approved")
    await stack.mp_notify(payment_id)
    await stack.wait_stage(order_id, "completed")


async def test_rejected_payment_is_cancelled(stack) -> None:
    """A rejected payment is cancelled: no user, no e-mail."""
    payment_id = await stack.mp_payment(status="rejected")
    await stack.mp_notify(payment_id)
    await stack.wait_stage(f"purchase:mercadopago:{payment_id}", "cancelled")
    state = await stack.sandbox.state()
    assert not state["lovable_users"] and not state["emails"]


async def test_refund_after_completion_revokes_access(stack) -> None:
    """A refund after completion deactivates the user: stage revoked, login refused."""
    payment_id = await stack.mp_payment(email="rui@example.com")
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "completed")
    await stack.mp_set_status(payment_id, "refunded")
    await stack.mp_notify(payment_id)
    order = await stack.wait_stage(order_id, "revoked")
    assert order.revoked_at is not None
    users = (await stack.sandbox.state())["lovable_users"]
    assert [u["active"] for u in users] == [False]
    assert (await stack.login("rui@example.com")).status_code == 403
