"""A refund deciding while a user creation waits at the customer's barrier wins: the creation,
once let through, sees the refund and makes no user (the storm's refunded-yet-active user)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.purchases import PurchaseActivities
from contracts.purchases import CreateUser, Payment, StageChange
from db import orders
from providers.clients import open_provider_clients

pytestmark = [pytest.mark.db, pytest.mark.sandbox]

ORDER = "purchase:mercadopago:77"


async def test_creation_let_through_after_a_refund_makes_no_user(sandbox_settings, pool, sandbox):
    payment = Payment(
        state="approved",
        provider_status="approved",
        email="ana@example.com",
        name="Ana",
        amount=Decimal("49.90"),
    )
    async with pool.connection() as conn:
        await orders.apply_stage(
            conn,
            StageChange(
                order_id=ORDER,
                provider="mercadopago",
                provider_order_id="77",
                stage="creating_user",
                payment=payment,
            ),
        )
    async with open_provider_clients(sandbox_settings) as providers:
        activities = PurchaseActivities(sandbox_settings, pool, providers)
        async with pool.connection() as refund, refund.transaction():
            # The refund decides (and holds the customer's lock) while the attempt starts: it
            # reads the order unrefunded and waits at the barrier.
            decision = await orders.record_refund(refund, ORDER)
            assert decision is not None and decision.lovable_user_id is None
            attempt = asyncio.create_task(
                ActivityEnvironment().run(activities.create_user, CreateUser(order_id=ORDER))
            )
            await asyncio.sleep(1)
            assert not attempt.done()
        with pytest.raises(ApplicationError) as raised:
            await asyncio.wait_for(attempt, 10)
    assert raised.value.type == "OrderRefunded"
    assert (await sandbox.state())["lovable_users"] == []
