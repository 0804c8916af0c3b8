"""The refund's decision about a shared Lovable user is made in PostgreSQL, one at a time."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from db import orders
from workflows.purchase_types import Payment, StageChange

pytestmark = pytest.mark.db


async def paid_order(pool, order_id: str, email: str, user_id: str) -> None:
    payment = Payment(
        state="approved", provider_status="approved", email=email, amount=Decimal("49.90")
    )
    async with pool.connection() as conn:
        await orders.apply_stage(
            conn,
            StageChange(
                order_id=f"purchase:mercadopago:{order_id}",
                provider="mercadopago",
                provider_order_id=order_id,
                stage="completed",
                payment=payment,
            ),
        )
        await orders.store_user(conn, f"purchase:mercadopago:{order_id}", user_id, existed=False)


async def test_two_refunds_at_once_leave_the_user_deactivated(pool) -> None:
    """While one refund decides, the other waits for it, then sees it refunded and deactivates;
    neither keeps the user for an order that is itself being refunded."""
    await paid_order(pool, "1", "Ana@example.com", "u1")
    await paid_order(pool, "2", "ana@example.com", "u1")
    async with pool.connection() as first, first.transaction():
        decided = await orders.record_refund(first, "purchase:mercadopago:1")
        assert decided is not None and decided.kept_for == ["purchase:mercadopago:2"]

        async def second_refund() -> orders.RefundDecision | None:
            async with pool.connection() as conn, conn.transaction():
                return await orders.record_refund(conn, "purchase:mercadopago:2")

        second = asyncio.create_task(second_refund())
        await asyncio.sleep(0.5)
        assert not second.done()  # waiting on the customer's lock
    decision = await asyncio.wait_for(second, 10)
    assert decision is not None and decision.deactivate and decision.lovable_user_id == "u1"


async def test_a_cancelled_or_unpaid_order_does_not_keep_the_user(pool) -> None:
    """Only live orders keep a shared user: one waiting for payment does not."""
    await paid_order(pool, "1", "ana@example.com", "u1")
    async with pool.connection() as conn:
        await orders.apply_stage(
            conn,
            StageChange(
                order_id="purchase:mercadopago:3",
                provider="mercadopago",
                provider_order_id="3",
                stage="awaiting_payment",
                payment=Payment(
                    state="pending", provider_status="pending", email="ana@example.com"
                ),
            ),
        )
        async with conn.transaction():
            decision = await orders.record_refund(conn, "purchase:mercadopago:1")
    assert decision is not None and decision.deactivate
