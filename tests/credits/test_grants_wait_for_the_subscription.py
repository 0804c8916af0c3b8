"""Grants go only to profiles whose sign-up is settled, so a failed first checkout can still
delete the profile it created (the ledger never deletes a grant)."""

from __future__ import annotations

import json

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from db import profiles
from tests.conftest import TEST_SECRETS
from tests.credits.conftest import Customer, Ledger, entrega

pytestmark = pytest.mark.db

ADMIN = {"Authorization": f"Bearer {TEST_SECRETS['admin_token']}"}


async def _grant(api: httpx.AsyncClient, customer: Customer) -> httpx.Response:
    body = {"profile_id": str(customer.profile_id), "credits_amount": 5}
    return await api.post("/api/v1/admin/credit-purchases", json=body, headers=ADMIN)


async def _start_checkout(pool: AsyncConnectionPool, customer: Customer) -> None:
    async with pool.connection() as conn:
        await profiles.start_checkout_attempt(conn, customer.profile_id, "basic")


async def test_no_grant_before_the_subscription(
    api: httpx.AsyncClient, ledger: Ledger, pool: AsyncConnectionPool
) -> None:
    """A profile with no subscription yet is refused (409), so its sign-up's rollback can still
    delete it."""
    customer = await ledger.customer(monthly_credits=None, subscribed=False)
    await _start_checkout(pool, customer)
    response = await _grant(api, customer)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "profile_without_subscription"
    assert await ledger.count("credit_purchases") == 0
    async with pool.connection() as conn:
        assert await profiles.delete_profile_of_auth_user(conn, customer.auth_user_id)


async def test_no_grant_while_a_checkout_runs(
    api: httpx.AsyncClient, ledger: Ledger, pool: AsyncConnectionPool
) -> None:
    """While a checkout of the profile is in flight the grant is refused (409), then accepted."""
    customer = await ledger.customer()
    await _start_checkout(pool, customer)
    response = await _grant(api, customer)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "checkout_in_progress"
    assert await ledger.count("credit_purchases") == 0
    async with pool.connection() as conn:
        await conn.execute("UPDATE checkout_attempts SET outcome = 'completed'")
    assert (await _grant(api, customer)).status_code == 201


async def test_cli_refuses_the_same(clean_db: str, ledger: Ledger) -> None:
    """`entrega credits grant` refuses a profile without subscription too (exit 1, JSON error)."""
    customer = await ledger.customer(subscribed=False)
    args = ["credits", "grant", str(customer.profile_id), "5", "--json"]
    result = await entrega(clean_db, *args)
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"]["code"] == "profile_without_subscription"
    assert await ledger.count("credit_purchases") == 0
