"""GET /api/v1/credits shows a user their own balance, and operators grant purchased credits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import TEST_SECRETS
from tests.credits.conftest import SHIPMENT, Customer, Ledger, current_period

pytestmark = pytest.mark.db

ADMIN = {"Authorization": f"Bearer {TEST_SECRETS['admin_token']}"}


async def test_balance_shape(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """The balance lists monthly limit, use and period, extra credits and the total."""
    start, end = current_period()
    customer = await ledger.customer(monthly_credits=2, period=(start, end))
    await ledger.purchase(customer, 4)
    await ledger.purchase(customer, 9, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    response = await api.get("/api/v1/credits", headers=customer.headers())
    assert response.status_code == 200
    body = response.json()
    assert datetime.fromisoformat(body["monthly"].pop("period_start")) == start
    assert datetime.fromisoformat(body["monthly"].pop("period_end")) == end
    assert body == {
        "monthly": {"limit": 2, "used": 1, "remaining": 1},
        "extra": {"remaining": 4},
        "total_remaining": 5,
    }


async def test_shipment_answer_agrees_with_the_balance(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """The balance in a 201 answer is the one GET /credits reports right after it."""
    customer = await ledger.customer(monthly_credits=1)
    await ledger.purchase(customer, 2)
    for _ in range(3):
        created = await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
        balance = await api.get("/api/v1/credits", headers=customer.headers())
        assert created.json()["balance"] == balance.json()


async def test_a_user_without_profile_gets_404(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """A valid token whose user has no profile sees nothing and can spend nothing."""
    await ledger.customer()
    stranger = Customer(uuid.uuid4(), uuid.uuid4())
    for response in (
        await api.get("/api/v1/credits", headers=stranger.headers()),
        await api.post("/api/v1/shipments", json=SHIPMENT, headers=stranger.headers()),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "profile_not_found"
    assert await ledger.count("shipments") == 0


async def test_users_see_and_spend_only_their_own(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """Bob's shipments spend Bob's credits; Alice's balance is untouched."""
    alice = await ledger.customer(monthly_credits=2)
    bob = await ledger.customer(monthly_credits=5)
    await api.post("/api/v1/shipments", json=SHIPMENT, headers=bob.headers())
    assert (await api.get("/api/v1/credits", headers=alice.headers())).json()[
        "total_remaining"
    ] == 2
    assert (await api.get("/api/v1/credits", headers=bob.headers())).json()["total_remaining"] == 4


async def test_no_token_is_401(api: httpx.AsyncClient) -> None:
    """Without a user token both endpoints answer 401."""
    assert (await api.get("/api/v1/credits")).status_code == 401
    response = await api.post("/api/v1/shipments", json=SHIPMENT, headers={"Idempotency-Key": "k"})
    assert response.status_code == 401


async def test_admin_grants_purchased_credits(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """An operator's grant becomes spendable extra credits with its expiry."""
    customer = await ledger.customer(monthly_credits=None)
    expires = datetime.now(UTC) + timedelta(days=30)
    response = await api.post(
        "/api/v1/admin/credit-purchases",
        json={
            "profile_id": str(customer.profile_id),
            "credits_amount": 7,
            "expires_at": expires.isoformat(),
        },
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    assert response.json()["credits_amount"] == 7
    assert datetime.fromisoformat(response.json()["expires_at"]) == expires
    balance = await api.get("/api/v1/credits", headers=customer.headers())
    assert balance.json()["extra"] == {"remaining": 7}


async def test_admin_grant_takes_a_date_like_the_cli(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """`expires_at` as a plain date means valid through that day (UTC), as `--expires` does."""
    customer = await ledger.customer()
    response = await api.post(
        "/api/v1/admin/credit-purchases",
        json={
            "profile_id": str(customer.profile_id),
            "credits_amount": 3,
            "expires_at": "2099-12-31",
        },
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    expires = datetime.fromisoformat(response.json()["expires_at"])
    assert expires == datetime(2100, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, {"credits_amount": 1}, 401),
        ({"Authorization": "Bearer wrong"}, {"credits_amount": 1}, 401),
        (ADMIN, {"credits_amount": 0}, 422),
        (ADMIN, {"credits_amount": 1, "expires_at": "2020-01-01T00:00:00Z"}, 422),
        (ADMIN, {"credits_amount": 1, "profile_id": str(uuid.uuid4())}, 404),
    ],
)
async def test_admin_grant_refusals(
    api: httpx.AsyncClient,
    ledger: Ledger,
    headers: dict[str, str],
    body: dict[str, object],
    status: int,
) -> None:
    """Grants need the admin token, a positive amount, a future expiry and an existing profile."""
    customer = await ledger.customer()
    payload = {"profile_id": str(customer.profile_id)} | body
    response = await api.post("/api/v1/admin/credit-purchases", json=payload, headers=headers)
    assert response.status_code == status, response.text
    assert await ledger.count("credit_purchases") == 0


async def test_plan_cut_below_use_leaves_no_monthly_credit(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """Moving to a smaller plan mid-period leaves zero monthly credits, never a negative balance."""
    customer = await ledger.customer(monthly_credits=2)
    await ledger.customer(monthly_credits=1)  # creates plan-1
    for _ in range(2):
        await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    async with ledger.pool.connection() as conn:
        await conn.execute(
            "UPDATE profiles SET plan_id = 'plan-1' WHERE profile_id = %s", (customer.profile_id,)
        )
    await ledger.purchase(customer, 1)
    balance = (await api.get("/api/v1/credits", headers=customer.headers())).json()
    assert balance["monthly"]["remaining"] == 0
    assert balance["total_remaining"] == 1
    created = await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    assert created.json()["credit"]["source_type"] == "purchase"
    assert created.json()["balance"]["total_remaining"] == 0
