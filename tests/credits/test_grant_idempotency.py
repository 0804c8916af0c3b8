"""Admin grants with an Idempotency-Key grant once, however often they are sent."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.conftest import TEST_SECRETS
from tests.credits.conftest import Customer, Ledger, entrega

pytestmark = pytest.mark.db

ADMIN = {"Authorization": f"Bearer {TEST_SECRETS['admin_token']}"}


async def _grant(
    api: httpx.AsyncClient, customer: Customer, key: str | None, amount: int = 5
) -> httpx.Response:
    headers = ADMIN | ({"Idempotency-Key": key} if key else {})
    body = {"profile_id": str(customer.profile_id), "credits_amount": amount}
    return await api.post("/api/v1/admin/credit-purchases", json=body, headers=headers)


async def test_two_identical_grants_with_a_key_grant_once(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """The replay (an operator retrying after a timeout) answers the first grant, 201, and the
    profile holds 5 extra credits, not 10."""
    customer = await ledger.customer()
    first = await _grant(api, customer, "grant-1")
    again = await _grant(api, customer, "grant-1")
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert await ledger.count("credit_purchases") == 1


async def test_concurrent_identical_grants_with_a_key_grant_once(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """Two requests with the same key at the same time: one grant, both answered with it."""
    customer = await ledger.customer()
    answers = await asyncio.gather(*(_grant(api, customer, "grant-2") for _ in range(4)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["purchase_id"] for a in answers}) == 1
    assert await ledger.count("credit_purchases") == 1


async def test_the_key_with_another_grant_is_422(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """The same key with another amount is refused, and nothing more is granted."""
    customer = await ledger.customer()
    assert (await _grant(api, customer, "grant-3")).status_code == 201
    other = await _grant(api, customer, "grant-3", amount=6)
    assert other.status_code == 422, other.text
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert await ledger.count("credit_purchases") == 1


async def test_without_a_key_each_grant_counts(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """No key, no deduplication: two grants are two grants (as before)."""
    customer = await ledger.customer()
    assert (await _grant(api, customer, None)).status_code == 201
    assert (await _grant(api, customer, None)).status_code == 201
    assert await ledger.count("credit_purchases") == 2


async def test_cli_grant_with_a_key_grants_once(clean_db: str, ledger: Ledger) -> None:
    """`entrega credits grant ... --idempotency-key K` twice grants once and prints the same
    purchase; the key with another amount is refused."""
    customer = await ledger.customer()
    args = ["credits", "grant", str(customer.profile_id), "5", "--idempotency-key", "k1", "--json"]
    first = await entrega(clean_db, *args)
    again = await entrega(clean_db, *args)
    assert first.exit_code == again.exit_code == 0, again.output
    assert json.loads(first.output) == json.loads(again.output)
    other = await entrega(clean_db, *[("6" if a == "5" else a) for a in args])
    assert other.exit_code == 1
    assert json.loads(other.output)["error"]["code"] == "idempotency_key_reused"
    assert await ledger.count("credit_purchases") == 1
