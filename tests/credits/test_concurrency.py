"""Many simultaneous requests on one profile never spend more than it has."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.credits.conftest import SHIPMENT, Ledger

pytestmark = pytest.mark.db


async def test_200_requests_on_50_credits(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """200 concurrent shipments on 50 credits: exactly 50 created, 150 refused, ledger balanced."""
    customer = await ledger.customer(monthly_credits=20)
    soon, later = await ledger.purchase(customer, 10), await ledger.purchase(customer, 20)
    responses = await asyncio.gather(
        *(
            api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
            for _ in range(200)
        )
    )
    assert Counter(r.status_code for r in responses) == {201: 50, 402: 150}
    assert Counter(source for source, _ in await ledger.usage(customer)) == {
        "monthly": 20,
        "purchase": 30,
    }
    assert Counter(p for _, p in await ledger.usage(customer) if p) == {soon: 10, later: 20}
    assert sorted(
        r.json()["balance"]["total_remaining"] for r in responses if r.status_code == 201
    ) == list(range(50))
    await ledger.assert_balanced()
    balance = await api.get("/api/v1/credits", headers=customer.headers())
    assert balance.json()["total_remaining"] == 0
