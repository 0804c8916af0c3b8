"""Asaas events sent by the sandbox to the gateway over real HTTP set the profile's period."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from db import profiles as db_profiles
from tests.support import serve

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]
BRT = ZoneInfo("America/Sao_Paulo")


async def _send(stack, payment_id: str, event: str) -> None:
    sent = await stack.sandbox.http.post(
        f"/_sandbox/asaas/payments/{payment_id}/events", json={"event": event}
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["status_code"] == 200, sent.text
    await stack.settle_payment(payment_id)


async def test_payment_confirmed_then_renewed(stack, pool) -> None:
    """The first charge's PAYMENT_CONFIRMED sets [due date, +1 month) and the plan; the renewal's
    PAYMENT_RECEIVED moves the period one month on; sending it twice leaves it there."""
    account = await stack.registered(0)
    subscription_id = (await stack.checkout(account["auth_user_id"])).json()["subscription_id"]
    [payment] = (await stack.sandbox.state())["asaas_payments"]
    async with serve(stack.app) as gateway:
        await stack.sandbox.set_gateway(gateway)
        await _send(stack, payment["id"], "PAYMENT_CONFIRMED")
        async with pool.connection() as conn:
            profile = await db_profiles.get_by_auth_user_id(conn, account["auth_user_id"])
        due = date.fromisoformat(payment["dueDate"])
        assert profile.plan_id == "basic"
        assert profile.current_period_start == datetime(due.year, due.month, due.day, tzinfo=BRT)
        first_end = profile.current_period_end
        assert first_end - profile.current_period_start >= timedelta(days=28)

        renewal = await stack.sandbox.http.post(
            f"/_sandbox/asaas/subscriptions/{subscription_id}/payments"
        )
        renewal_id = renewal.json()["id"]
        for _ in range(2):  # the same payment's event twice: the period must not move twice
            await _send(stack, renewal_id, "PAYMENT_RECEIVED")
    async with pool.connection() as conn:
        renewed = await db_profiles.get_by_auth_user_id(conn, account["auth_user_id"])
        events = await (await conn.execute("SELECT count(*) FROM asaas_events")).fetchone()
    assert renewed.current_period_start == first_end
    assert renewed.current_period_end > first_end
    # The sandbox gives every delivery a new event id, so three events are recorded.
    assert events == (3,)


async def test_paying_next_month_early_keeps_this_months_credits(stack) -> None:
    """A period starts when it starts, not when it is paid: after this month's charge is
    confirmed and next month's is paid early, the balance still shows this month's period and
    a shipment spends a monthly credit (it was 402 when the early payment moved the period)."""
    account = await stack.registered(0)
    subscription_id = (await stack.checkout(account["auth_user_id"])).json()["subscription_id"]
    [first] = (await stack.sandbox.state())["asaas_payments"]
    async with serve(stack.app) as gateway:
        await stack.sandbox.set_gateway(gateway)
        await _send(stack, first["id"], "PAYMENT_CONFIRMED")
        early = await stack.sandbox.http.post(
            f"/_sandbox/asaas/subscriptions/{subscription_id}/payments"
        )
        assert date.fromisoformat(early.json()["dueDate"]) > date.today()
        await _send(stack, early.json()["id"], "PAYMENT_RECEIVED")

    token_user = account["auth_user_id"]
    shipment = await stack.shipment(token_user, "early-1")
    assert shipment.status_code == 201, shipment.text
    assert shipment.json()["credit"]["source_type"] == "monthly"
    balance = (await stack.balance(token_user)).json()
    due = date.fromisoformat(first["dueDate"])
    assert datetime.fromisoformat(balance["monthly"]["period_start"]) == datetime(
        due.year, due.month, due.day, tzinfo=BRT
    )
    assert balance["monthly"]["used"] == 1
