"""Asaas has no idempotency key: a create whose answer was lost may land after the retry made
another. Whenever the extra one shows up, each checkout attempt keeps exactly one subscription
(the one it saved, or else the oldest) and the others are deleted; reconcile reports them."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import pytest

from activities.accounts import AccountActivities
from contracts.signups import CustomerSpec, SubscriptionCleanup, SubscriptionSpec
from tests.sagas.conftest import person
from tests.support import serve

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def _subscriptions(stack) -> list[dict]:
    return (await stack.sandbox.state())["asaas_subscriptions"]


async def test_a_subscription_landing_after_the_checkout_is_reported_then_deleted(stack) -> None:
    """Asaas still creating when the client gave up (latency beyond the HTTP timeout): the retry
    creates a second one and the checkout saves it; the first lands later. Reconcile reports the
    late one, and its first charge's event deletes it: one subscription, the saved one."""
    account = await stack.registered(0)
    await stack.sandbox.fault("asaas", "create_subscription", latency_ms=3000, times=1)
    response = await stack.checkout(account["auth_user_id"])
    assert response.status_code == 201, response.text
    saved = response.json()["subscription_id"]
    for _ in range(100):  # the abandoned create completes in the sandbox
        if len(await _subscriptions(stack)) == 2:
            break
        await asyncio.sleep(0.05)
    [late] = [s["id"] for s in await _subscriptions(stack) if s["id"] != saved]

    orphans = await stack.orphans()
    assert [(o.kind, o.id) for o in orphans] == [("duplicate_subscription", late)]

    [charge] = [
        p for p in (await stack.sandbox.state())["asaas_payments"] if p["subscription"] == late
    ]
    async with serve(stack.app) as gateway:
        await stack.sandbox.set_gateway(gateway)
        sent = await stack.sandbox.http.post(
            f"/_sandbox/asaas/payments/{charge['id']}/events", json={"event": "PAYMENT_CREATED"}
        )
        assert sent.json()["status_code"] == 200, sent.text
        outcome = await stack.settle_payment(charge["id"])
    assert outcome.outcome == "duplicate_deleted"
    assert [s["id"] for s in await _subscriptions(stack)] == [saved]
    assert await stack.orphans() == []


async def test_duplicates_already_there_are_settled_before_saving(stack) -> None:
    """The subscription step finding two subscriptions of its attempt keeps the oldest and
    deletes the other before anything is saved; the customer step does the same."""
    asaas = stack.providers.asaas
    account = await stack.registered(0)
    activities = AccountActivities(stack.pool, stack.providers, stack.app.state.settings)
    data = person(0)
    customer_spec = CustomerSpec(
        profile_id=account["profile_id"],
        name=data["name"],
        email=data["email"],
        phone=data["phone"],
        cpf_cnpj=data["cpfCnpj"],
    )
    twins = [
        await asaas.create_customer(
            data["name"], data["cpfCnpj"], data["email"], None, account["profile_id"]
        )
        for _ in range(2)
    ]
    customer = await activities.ensure_asaas_customer(customer_spec)
    assert customer.customer_id == min(c.id for c in twins)
    assert [c["id"] for c in (await stack.sandbox.state())["asaas_customers"]] == [
        customer.customer_id
    ]

    reference = f"checkout:{account['profile_id']}:1"
    made = [
        await asaas.create_subscription(
            customer.customer_id, "PIX", Decimal("49.90"), date.today(), "MONTHLY", "x", reference
        )
        for _ in range(2)
    ]
    kept = await activities.create_subscription(
        SubscriptionSpec(
            customer_id=customer.customer_id,
            billing_type="PIX",
            price_cents=4990,
            cycle="MONTHLY",
            description="x",
            external_reference=reference,
        )
    )
    assert kept.subscription_id == min(s.id for s in made)
    assert [s["id"] for s in await _subscriptions(stack)] == [kept.subscription_id]


async def test_undoing_an_attempt_deletes_every_subscription_of_it(stack) -> None:
    """The subscription compensation deletes all of the attempt's subscriptions, not only the
    first one Asaas lists."""
    asaas = stack.providers.asaas
    account = await stack.registered(0)
    data = person(0)
    customer = await asaas.create_customer(
        data["name"], data["cpfCnpj"], data["email"], None, account["profile_id"]
    )
    reference = f"checkout:{account['profile_id']}:1"
    for _ in range(2):
        await asaas.create_subscription(
            customer.id, "PIX", Decimal("49.90"), date.today(), "MONTHLY", "x", reference
        )
    activities = AccountActivities(stack.pool, stack.providers, stack.app.state.settings)
    await activities.delete_subscription(SubscriptionCleanup(external_reference=reference))
    assert await _subscriptions(stack) == []
