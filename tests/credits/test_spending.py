"""One credit per shipment: monthly credits of the period first, then purchases in spending order,
and a shipment never exists without its credit (nor a credit without its shipment)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from db import credits
from tests.credits.conftest import SHIPMENT, Ledger

pytestmark = pytest.mark.db


async def test_monthly_credit_is_spent(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """A shipment on a plan with monthly credits left spends one of them."""
    customer = await ledger.customer(monthly_credits=2)
    response = await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["credit"] == {"source_type": "monthly", "purchase_id": None}
    monthly = body["balance"]["monthly"]
    assert (monthly["limit"], monthly["used"], monthly["remaining"]) == (2, 1, 1)
    assert body["balance"]["total_remaining"] == 1
    assert await ledger.usage(customer) == [("monthly", None)]


async def test_purchased_credit_is_spent(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """Without a plan, a shipment spends a purchased credit and names the purchase."""
    customer = await ledger.customer(monthly_credits=None)
    purchase_id = await ledger.purchase(customer, 3)
    response = await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["credit"] == {"source_type": "purchase", "purchase_id": str(purchase_id)}
    assert body["balance"]["extra"] == {"remaining": 2}
    assert body["balance"]["total_remaining"] == 2


async def test_monthly_credits_go_before_purchased(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """With both kinds left, monthly credits are spent first, then the purchase."""
    customer = await ledger.customer(monthly_credits=2)
    purchase_id = await ledger.purchase(customer, 5)
    for _ in range(3):
        response = await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
        assert response.status_code == 201, response.text
    assert await ledger.usage(customer) == [
        ("monthly", None),
        ("monthly", None),
        ("purchase", purchase_id),
    ]


async def test_purchases_spend_soonest_expiry_then_oldest(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """Purchased credits go soonest-expiring first, then oldest first; expired ones never."""
    customer = await ledger.customer(monthly_credits=None)
    now = datetime.now(UTC)
    newer = await ledger.purchase(customer, 1, created_at=now - timedelta(days=1))
    older = await ledger.purchase(customer, 1, created_at=now - timedelta(days=2))
    expiring = await ledger.purchase(customer, 1, expires_at=now + timedelta(days=3))
    await ledger.purchase(customer, 5, expires_at=now - timedelta(seconds=1))
    statuses = []
    for _ in range(4):
        response = await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
        statuses.append(response.status_code)
    assert statuses == [201, 201, 201, 402]
    assert [p for _, p in await ledger.usage(customer)] == [expiring, older, newer]


async def test_no_credit_left_answers_402_and_writes_nothing(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """With every credit spent, the next shipment is refused with 402 and leaves no row."""
    customer = await ledger.customer(monthly_credits=1)
    assert (
        await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    ).is_success
    response = await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert response.json()["error"]["message"] == "Créditos insuficientes"
    assert await ledger.count("shipments") == 1
    assert await ledger.count("credit_usage") == 1
    assert await ledger.count("shipment_requests") == 1


@pytest.mark.parametrize(
    "change",
    [
        {"recipient_name": "  "},
        {"destination_postal_code": "1234-567"},
        {"weight_grams": 0},
        {"weight_grams": 30001},
        {"reference": "x" * 201},
    ],
)
async def test_invalid_shipment_answers_422_and_writes_nothing(
    api: httpx.AsyncClient, ledger: Ledger, change: dict[str, object]
) -> None:
    """Invalid shipment data is refused with 422 and consumes nothing."""
    customer = await ledger.customer(monthly_credits=2)
    response = await api.post(
        "/api/v1/shipments", json=SHIPMENT | change, headers=customer.headers()
    )
    assert response.status_code == 422, response.text
    assert await ledger.count("shipments") == 0
    assert await ledger.count("credit_usage") == 0


async def test_shipment_the_database_refuses_rolls_back_its_credit(ledger: Ledger) -> None:
    """A shipment insert that fails (data the API would never pass) takes nothing with it."""
    customer = await ledger.customer(monthly_credits=2)
    with pytest.raises(psycopg.errors.CheckViolation):
        async with ledger.pool.connection() as conn, conn.transaction():
            await credits.spend_credit(
                conn,
                auth_user_id=customer.auth_user_id,
                idempotency_key="k1",
                request_hash="h",
                recipient_name="Maria",
                destination_postal_code="01310100",
                weight_grams=-5,
                reference=None,
            )
    assert await ledger.count("shipments") == 0
    assert await ledger.count("credit_usage") == 0
    assert await ledger.count("shipment_requests") == 0
    async with ledger.pool.connection() as conn:
        found = await credits.balance(conn, customer.profile_id)
    assert found is not None and found.monthly.used == 0


async def test_failure_between_the_two_inserts_leaves_nothing(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """When the credit_usage insert fails after the shipment insert, neither row survives."""
    customer = await ledger.customer(monthly_credits=2)
    async with ledger.pool.connection() as conn:
        await conn.execute(
            """
            CREATE FUNCTION fail_usage_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'injected failure'; END $$;
            CREATE TRIGGER fail_usage_insert BEFORE INSERT ON credit_usage
                FOR EACH ROW EXECUTE FUNCTION fail_usage_insert();
            """
        )
    try:
        response = await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    finally:
        async with ledger.pool.connection() as conn:
            await conn.execute(
                "DROP TRIGGER fail_usage_insert ON credit_usage; DROP FUNCTION fail_usage_insert();"
            )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert await ledger.count("shipments") == 0
    assert await ledger.count("credit_usage") == 0
    assert await ledger.count("shipment_requests") == 0
    retry = await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    assert retry.json()["balance"]["monthly"]["used"] == 1


async def test_a_shipment_cannot_commit_without_its_credit(ledger: Ledger) -> None:
    """Code that inserts a shipment and no usage row cannot commit it."""
    customer = await ledger.customer(monthly_credits=2)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="no credit_usage"):
        async with ledger.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO shipments (shipment_id, profile_id, recipient_name, "
                "destination_postal_code, weight_grams) VALUES (%s, %s, 'A', '01310100', 10)",
                (uuid.uuid4(), customer.profile_id),
            )
    assert await ledger.count("shipments") == 0


async def test_spent_credits_cannot_be_edited_or_deleted(
    ledger: Ledger, api: httpx.AsyncClient
) -> None:
    """The ledger is append-only: UPDATE and DELETE on credit_usage are refused."""
    customer = await ledger.customer(monthly_credits=2)
    await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    for statement in ("UPDATE credit_usage SET unit = 2", "DELETE FROM credit_usage"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            async with ledger.pool.connection() as conn:
                await conn.execute(statement)
    assert await ledger.count("credit_usage") == 1


async def test_new_period_spends_monthly_credits_again(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """After the period rolls over, the first shipment spends a monthly credit of the new period."""
    now = datetime.now(UTC)
    customer = await ledger.customer(monthly_credits=1)
    purchase_id = await ledger.purchase(customer, 5)
    for _ in range(2):
        await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    await ledger.set_period(customer, now - timedelta(minutes=1), now + timedelta(days=30))
    response = await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    assert response.json()["credit"]["source_type"] == "monthly"
    assert response.json()["balance"]["monthly"]["used"] == 1
    assert await ledger.usage(customer) == [
        ("monthly", None),
        ("purchase", purchase_id),
        ("monthly", None),
    ]
    await ledger.assert_balanced()


async def test_lapsed_period_gives_no_monthly_credits(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """Once the recorded period has ended without renewal, only purchased credits are spendable."""
    now = datetime.now(UTC)
    customer = await ledger.customer(
        monthly_credits=5, period=(now - timedelta(days=31), now - timedelta(days=1))
    )
    response = await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    assert response.status_code == 402
