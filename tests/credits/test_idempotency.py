"""The same Idempotency-Key from the same user answers once and spends once, even when racing."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.credits.conftest import SHIPMENT, Ledger

pytestmark = pytest.mark.db


async def test_same_key_returns_the_first_answer(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """Repeating a request with its key returns the first 201 body and spends nothing more."""
    customer = await ledger.customer(monthly_credits=3)
    headers = customer.headers("order-42")
    first = await api.post("/api/v1/shipments", json=SHIPMENT, headers=headers)
    second = await api.post("/api/v1/shipments", json=SHIPMENT, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert await ledger.count("credit_usage") == 1


async def test_equivalent_body_is_the_same_request(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """A CEP written with or without its hyphen is the same request for the key."""
    customer = await ledger.customer(monthly_credits=3)
    headers = customer.headers("order-43")
    first = await api.post("/api/v1/shipments", json=SHIPMENT, headers=headers)
    same = SHIPMENT | {"destination_postal_code": "01310100"}
    second = await api.post("/api/v1/shipments", json=same, headers=headers)
    assert second.json() == first.json()


async def test_racing_requests_with_one_key_spend_once(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """Ten simultaneous requests with one key create one shipment and all get its answer."""
    customer = await ledger.customer(monthly_credits=3)
    headers = customer.headers("race-1")
    responses = await asyncio.gather(
        *(api.post("/api/v1/shipments", json=SHIPMENT, headers=headers) for _ in range(10))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    assert await ledger.count("shipments") == 1
    assert await ledger.count("credit_usage") == 1


async def test_key_reused_with_another_body_is_refused(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """A key already used for another shipment answers 422 and writes nothing."""
    customer = await ledger.customer(monthly_credits=3)
    headers = customer.headers("order-44")
    await api.post("/api/v1/shipments", json=SHIPMENT, headers=headers)
    other = SHIPMENT | {"weight_grams": 900}
    response = await api.post("/api/v1/shipments", json=other, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert await ledger.count("shipments") == 1


async def test_keys_belong_to_their_user(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """Two users using the same key get two shipments: a key is scoped to its profile."""
    alice, bob = await ledger.customer(), await ledger.customer()
    first = await api.post("/api/v1/shipments", json=SHIPMENT, headers=alice.headers("k"))
    second = await api.post("/api/v1/shipments", json=SHIPMENT, headers=bob.headers("k"))
    assert first.status_code == second.status_code == 201
    assert first.json()["shipment_id"] != second.json()["shipment_id"]


async def test_a_refused_request_is_not_remembered(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """A 402 writes nothing, so the same key succeeds once credits have been granted."""
    customer = await ledger.customer(monthly_credits=None)
    headers = customer.headers("order-45")
    assert (await api.post("/api/v1/shipments", json=SHIPMENT, headers=headers)).status_code == 402
    await ledger.purchase(customer, 1)
    assert (await api.post("/api/v1/shipments", json=SHIPMENT, headers=headers)).status_code == 201


async def test_missing_key_is_a_validation_error(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """A shipment without an Idempotency-Key header is refused with 422."""
    customer = await ledger.customer()
    headers = customer.headers()
    del headers["Idempotency-Key"]
    response = await api.post("/api/v1/shipments", json=SHIPMENT, headers=headers)
    assert response.status_code == 422
    assert await ledger.count("shipments") == 0
