"""A later checkout replaces the active subscription: the customer is never billed twice, and a
failure to cancel the old one leaves the old one in place (never zero, never two)."""

from __future__ import annotations

import pytest

from workflows.saga import STEP_RETRY

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def test_later_checkout_cancels_the_previous_subscription(stack) -> None:
    """After a second successful checkout Asaas holds exactly one subscription: the new one."""
    account = await stack.registered(0)
    first = (await stack.checkout(account["auth_user_id"])).json()
    response = await stack.checkout(account["auth_user_id"], billing_type="BOLETO")
    assert response.status_code == 201, response.text
    second = response.json()
    assert second["subscription_id"] != first["subscription_id"]
    state = await stack.sandbox.state()
    assert [s["id"] for s in state["asaas_subscriptions"]] == [second["subscription_id"]]
    [profile] = await stack.profiles()
    assert profile["subscription_id"] == second["subscription_id"]
    journal = await stack.journal(f"checkout:{account['profile_id']}:2")
    assert journal[-1] == ("step_completed", "cancel_previous_subscription")
    assert await stack.orphans() == []


async def test_previous_subscription_already_gone_is_fine(stack, pool) -> None:
    """A previous subscription Asaas no longer has (404) counts as cancelled: checkout succeeds."""
    account = await stack.registered(0)
    await stack.checkout(account["auth_user_id"])
    async with pool.connection() as conn:
        await conn.execute("UPDATE profiles SET subscription_id = 'sub_gone'")
    response = await stack.checkout(account["auth_user_id"])
    assert response.status_code == 201, response.text
    [profile] = await stack.profiles()
    assert profile["subscription_id"] == response.json()["subscription_id"]


@pytest.mark.parametrize(
    ("status", "times"), [(400, 1), (503, STEP_RETRY.maximum_attempts)], ids=["rejected", "down"]
)
async def test_failing_to_cancel_the_previous_keeps_it(stack, status, times) -> None:
    """When deleting the old subscription fails for good, the new one is deleted and the profile
    keeps the old one: 502 checkout_failed, exactly one subscription, no orphans."""
    account = await stack.registered(0)
    first = (await stack.checkout(account["auth_user_id"])).json()
    await stack.sandbox.fault("asaas", "delete_subscription", status=status, times=times)
    response = await stack.checkout(account["auth_user_id"])
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "checkout_failed"
    state = await stack.sandbox.state()
    assert [s["id"] for s in state["asaas_subscriptions"]] == [first["subscription_id"]]
    [profile] = await stack.profiles()
    assert profile["subscription_id"] == first["subscription_id"]
    journal = await stack.journal(f"checkout:{account['profile_id']}:2")
    assert ("step_failed", "cancel_previous_subscription") in journal
    assert journal[-2:] == [("compensated", "save_subscription"), ("compensated", "subscription")]
    assert await stack.orphans() == []
