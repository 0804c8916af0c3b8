"""Answers lost after the provider acted (sandbox `after_effect`): the order still ends right."""

from __future__ import annotations

import asyncio

import pytest

from db import orders
from tests.purchases.stack import purchase_stack, stack_settings

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def test_lost_create_user_answer_still_sends_the_password(stack) -> None:
    """Lovable creates the user but the answer is lost; the retry hears `created: false` for
    this very order, so the credentials e-mail carries the password, which opens the app."""
    await stack.sandbox.fault("lovable", "create_user", status=503, times=1, after_effect=True)
    payment_id = await stack.mp_payment()
    await stack.mp_notify(payment_id)
    order = await stack.wait_stage(f"purchase:mercadopago:{payment_id}", "completed")
    assert order.user_existed is False
    assert len((await stack.sandbox.state())["lovable_users"]) == 1
    assert (await stack.login("ana@example.com")).status_code == 200


async def test_resend_lost_batch_answer_re_sends_the_same_batch(stack) -> None:
    """Resend sends but the answers are lost, its memory of the key too: every retry re-sends
    the very batch it lost (same key, same body), never a new one. The e-mails may reach the
    customer twice (the trade-off in docs/providers.md), none is lost, and email_logs records
    each once."""
    await stack.sandbox.fault("resend", "send_batch", status=503, times=2, after_effect=True)
    payment_id = await stack.mp_payment()
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "completed")
    for _ in range(100):  # the confirmation may still be retrying
        emails = await stack.emails()
        if {e["tags"]["email_type"] for e in emails} == {"credentials", "purchase_confirmation"}:
            break
        await asyncio.sleep(0.1)
    assert len(emails) == 4  # two answers lost, so two e-mails were sent twice
    batches: dict[str, set[str]] = {}
    for email in emails:
        batches.setdefault(email["tags"]["email_type"], set()).add(email["batch_idempotency_key"])
    assert all(len(keys) == 1 for keys in batches.values()), batches
    async with stack.pool.connection() as conn:
        sent = await orders.order_emails(conn, order_id)
    assert sorted(e.idempotency_key for e in sent if e.status == "sent") == [
        f"{order_id}:credentials",
        f"{order_id}:purchase_confirmation",
    ]


async def test_refund_after_every_create_user_answer_was_lost_deactivates_the_user(
    database_url, pool, temporal_client, sandbox, task_queue
) -> None:
    """Lovable made the user but answered each attempt after the client had given up, so the
    order holds no user id when the refund arrives (the storm found it): the refund repeats the
    same idempotent creation request, learns this order's user and deactivates it; the order
    ends `revoked`. (Answered errors made no user: tests/purchases/test_refund_finality.py.)"""
    # Parked long after its two quick attempts, so that the refund finds it without a user.
    settings = stack_settings(
        database_url, sandbox.url, temporal_client, task_queue, provisioning_retry_schedule="10m"
    )
    async with purchase_stack(settings, pool, temporal_client, sandbox) as stack:
        await stack.sandbox.fault("lovable", "create_user", latency_ms=4500, times=2)
        payment_id = await stack.mp_payment()
        await stack.mp_notify(payment_id)
        order_id = f"purchase:mercadopago:{payment_id}"
        await stack.wait_stage(order_id, "failed_at_user", seconds=30)
        # Both requests the client gave up on finish at the sandbox (1.5 s later) before the
        # refund, and before the next test's sandbox: none is left in flight.
        await asyncio.sleep(3)
        [user] = (await stack.sandbox.state())["lovable_users"]
        assert user["active"] is True
        await stack.mp_set_status(payment_id, "refunded")
        await stack.mp_notify(payment_id)
        order = await stack.wait_stage(order_id, "revoked")
        assert order.lovable_user_id == user["user_id"]
        [user] = (await stack.sandbox.state())["lovable_users"]
        assert user["active"] is False
