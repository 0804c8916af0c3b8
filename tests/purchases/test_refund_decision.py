"""The refund's decision about a shared Lovable user is made in PostgreSQL, one at a time."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from contracts.purchases import Payment, StageChange
from db import orders

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


def change(order_id: str, stage: str, state: str = "approved") -> StageChange:
    payment = Payment(state=state, provider_status=state, email="ana@example.com")  # type: ignore[arg-type]
    return StageChange(
        order_id=f"purchase:appmax:{order_id}",
        provider="appmax",
        provider_order_id=order_id,
        stage=stage,  # type: ignore[arg-type]
        payment=payment,
    )


async def test_a_refunded_order_refuses_every_provisioning_stage(pool) -> None:
    """Once a change carries a refund, no later change (any run's) moves the order back into
    provisioning; the answer tells the workflow it is refunded."""
    async with pool.connection() as conn:
        await orders.apply_stage(conn, change("9", "cancelled", "refunded"))
        for stage in ("queued", "creating_user", "sending_credentials", "completed"):
            state = await orders.apply_stage(conn, change("9", stage))
            assert (state.stage, state.refunded) == ("cancelled", True)


async def test_cancelling_a_parked_order_erases_its_password(pool) -> None:
    """An order parked in failed_permanent with its password stored, then cancelled by a
    refund, keeps no password."""
    async with pool.connection() as conn:
        await orders.apply_stage(conn, change("10", "creating_user"))
        await orders.store_password_once(conn, "purchase:appmax:10", b"token")
        await orders.apply_stage(conn, change("10", "failed_permanent"))
        assert (await orders.get_order(conn, "purchase:appmax:10")).encrypted_password
        await orders.apply_stage(conn, change("10", "cancelled", "refunded"))
        order = await orders.get_order(conn, "purchase:appmax:10")
    assert order is not None and order.encrypted_password is None
