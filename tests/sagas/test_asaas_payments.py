"""An Asaas event only names a payment: the payment's workflow re-reads it from Asaas and applies
Asaas's record, whatever the body claimed, and never lets an old subscription take the plan back."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.app import create_app
from db import profiles as db_profiles
from tests.conftest import TEST_SECRETS, make_settings, sandbox_urls
from tests.support import free_port, serve

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]
BRT = ZoneInfo("America/Sao_Paulo")
HEADERS = {"asaas-access-token": TEST_SECRETS["asaas_webhook_token"]}


def _claim(event_id: str, event: str, payment_id: str, subscription: str, due: str) -> dict:
    """A webhook body as anyone holding the static token could post it."""
    return {
        "id": event_id,
        "event": event,
        "dateCreated": "2026-11-23 10:00:00",
        "payment": {
            "id": payment_id,
            "customer": "cus_1",
            "subscription": subscription,
            "value": 49.9,
            "status": "CONFIRMED",
            "dueDate": due,
        },
    }


async def _subscribed(stack, plan_id: str = "basic") -> tuple[dict, str, dict]:
    account = await stack.registered(0)
    response = await stack.checkout(account["auth_user_id"], plan_id=plan_id)
    assert response.status_code == 201, response.text
    subscription_id = response.json()["subscription_id"]
    payments = (await stack.sandbox.state())["asaas_payments"]
    [payment] = [p for p in payments if p["subscription"] == subscription_id]
    return account, subscription_id, payment


async def _send(stack, payment_id: str, event: str) -> None:
    sent = await stack.sandbox.http.post(
        f"/_sandbox/asaas/payments/{payment_id}/events", json={"event": event}
    )
    assert sent.status_code == 200 and sent.json()["status_code"] == 200, sent.text


async def _profile(stack, account):
    async with stack.pool.connection() as conn:
        return await db_profiles.get_by_auth_user_id(conn, account["auth_user_id"])


def _day_start(day: str) -> datetime:
    due = date.fromisoformat(day)
    return datetime(due.year, due.month, due.day, tzinfo=BRT)


async def test_a_lying_body_is_not_trusted(stack) -> None:
    """A PAYMENT_CONFIRMED claiming a pending charge was paid sets nothing; once Asaas records it
    paid, the period comes from Asaas's due date, not from a later body's claimed one."""
    account, subscription_id, payment = await _subscribed(stack)
    lie = _claim("evt_lie_1", "PAYMENT_CONFIRMED", payment["id"], subscription_id, "2030-01-01")
    assert (await stack.api.post("/webhooks/asaas", json=lie, headers=HEADERS)).status_code == 200
    outcome = await stack.settle_payment(payment["id"])
    assert outcome is None or outcome.outcome == "not_paid"
    profile = await _profile(stack, account)
    assert (profile.current_period_start, profile.plan_id) == (None, None)

    async with serve(stack.app) as gateway:
        await stack.sandbox.set_gateway(gateway)
        await _send(stack, payment["id"], "PAYMENT_CONFIRMED")
    await stack.settle_payment(payment["id"])
    lie = _claim("evt_lie_2", "PAYMENT_RECEIVED", payment["id"], subscription_id, "2030-01-01")
    assert (await stack.api.post("/webhooks/asaas", json=lie, headers=HEADERS)).status_code == 200
    await stack.settle_payment(payment["id"])
    profile = await _profile(stack, account)
    assert profile.current_period_start == _day_start(payment["dueDate"])
    assert profile.plan_id == "basic"


async def test_asaas_down_during_the_webhook_is_applied_later(stack) -> None:
    """Asaas failing the re-read does not fail the delivery (200: failed deliveries pause
    Asaas's queue); the workflow retries the read and applies the payment once Asaas answers."""
    account, _, payment = await _subscribed(stack)
    await stack.sandbox.fault("asaas", "get_payment", status=503, times=2)
    async with serve(stack.app) as gateway:
        await stack.sandbox.set_gateway(gateway)
        await _send(stack, payment["id"], "PAYMENT_CONFIRMED")
    outcome = await stack.settle_payment(payment["id"])
    assert outcome.outcome == "applied"
    [fault] = (await stack.sandbox.http.get("/_sandbox/faults")).json()
    assert fault["fired"] == 2
    assert (await _profile(stack, account)).current_period_start == _day_start(payment["dueDate"])


async def test_late_event_of_a_replaced_subscription_keeps_the_new_plan(stack, pool) -> None:
    """After a later checkout replaced the subscription (plan basic -> pro), a late confirmation
    of the old subscription's charge changes neither the plan nor the period."""
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO plans (plan_id, name, price_cents, cycle, monthly_credits)"
            " VALUES ('pro', 'Pro', 9990, 'MONTHLY', 500)"
        )
    account, _, old_payment = await _subscribed(stack, "basic")
    response = await stack.checkout(account["auth_user_id"], plan_id="pro")
    assert response.status_code == 201, response.text
    new_subscription = response.json()["subscription_id"]
    payments = (await stack.sandbox.state())["asaas_payments"]
    [new_payment] = [p for p in payments if p["subscription"] == new_subscription]
    async with serve(stack.app) as gateway:
        await stack.sandbox.set_gateway(gateway)
        await _send(stack, new_payment["id"], "PAYMENT_CONFIRMED")
        await stack.settle_payment(new_payment["id"])
        before = await _profile(stack, account)
        assert before.plan_id == "pro"
        await _send(stack, old_payment["id"], "PAYMENT_CONFIRMED")
        outcome = await stack.settle_payment(old_payment["id"])
    assert outcome is None or outcome.outcome == "subscription_replaced"
    after = await _profile(stack, account)
    assert (after.plan_id, after.current_period_start, after.current_period_end) == (
        "pro",
        before.current_period_start,
        before.current_period_end,
    )


async def test_no_handoff_is_503_and_the_resent_event_is_handed_off(
    stack, pool, sandbox, database_url
) -> None:
    """With Temporal unreachable the event is recorded but answered 503 (Asaas re-sends); the
    re-sent event, a duplicate record, is still handed off, and then applied."""
    account, subscription_id, payment = await _subscribed(stack)
    await _send_without_gateway(stack, payment["id"])  # Asaas now records it paid
    body = _claim("evt_resent", "PAYMENT_CONFIRMED", payment["id"], subscription_id, "2030-01-01")
    settings = make_settings(
        database_url=database_url,
        temporal_address=f"127.0.0.1:{free_port()}",
        **sandbox_urls(sandbox.url),
    )
    down = create_app(settings, pool=pool)
    async with (
        down.router.lifespan_context(down),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=down), base_url="http://api") as api,
    ):
        refused = await api.post("/webhooks/asaas", json=body, headers=HEADERS)
    assert refused.status_code == 503, refused.text
    resent = await stack.api.post("/webhooks/asaas", json=body, headers=HEADERS)
    assert (resent.status_code, resent.json()) == (200, {"status": "duplicate"})
    assert (await stack.settle_payment(payment["id"])).outcome == "applied"
    assert (await _profile(stack, account)).current_period_start == _day_start(payment["dueDate"])


async def test_redelivered_event_is_recorded_once(stack, pool) -> None:
    """The same event id twice: both answered 200, one row, the second marked duplicate."""
    _, subscription_id, payment = await _subscribed(stack)
    body = _claim("evt_1", "PAYMENT_CREATED", payment["id"], subscription_id, "2026-11-23")
    first = await stack.api.post("/webhooks/asaas", json=body, headers=HEADERS)
    second = await stack.api.post("/webhooks/asaas", json=body, headers=HEADERS)
    assert [first.json()["status"], second.json()["status"]] == ["recorded", "duplicate"]
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT event_id FROM asaas_events")).fetchall()
    assert rows == [("evt_1",)]


async def _send_without_gateway(stack, payment_id: str) -> None:
    """Mark the payment CONFIRMED in Asaas while its webhook reaches nobody."""
    await stack.sandbox.set_gateway(f"http://127.0.0.1:{free_port()}")
    sent = await stack.sandbox.http.post(
        f"/_sandbox/asaas/payments/{payment_id}/events", json={"event": "PAYMENT_CONFIRMED"}
    )
    assert sent.status_code == 502, sent.text
