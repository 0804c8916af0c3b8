"""Property: whatever mix of grants, concurrent spends, expiries and period changes happens, the
ledger never overspends and always spends in the documented order."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool

from db import credits
from tests.credits.conftest import Ledger

pytestmark = pytest.mark.db

Grant = tuple[str, int, int | None]  # ("grant", credits, days until expiry or None)
Spend = tuple[str, int]  # ("spend", how many at once)
Expire = tuple[str, int]  # ("expire", which purchase, modulo their count)
NewPeriod = tuple[str]  # ("period",)

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(1, 3), st.none() | st.integers(1, 3)),
        st.tuples(st.just("spend"), st.integers(1, 4)),
        st.tuples(st.just("expire"), st.integers(0, 10)),
        st.tuples(st.just("period")),
    ),
    min_size=1,
    max_size=14,
)


@dataclass
class Purchase:
    purchase_id: uuid.UUID
    amount: int
    expires_at: datetime | None
    created_at: datetime
    expired: bool = False
    used: int = 0


@dataclass
class Model:
    """What the issue says should happen, computed without the database."""

    monthly_limit: int
    period: int = 0
    monthly_used: Counter[int] = field(default_factory=Counter)
    purchases: list[Purchase] = field(default_factory=list)

    def spend(self) -> tuple[str, uuid.UUID | None] | None:
        if self.monthly_used[self.period] < self.monthly_limit:
            self.monthly_used[self.period] += 1
            return ("monthly", None)
        live = [p for p in self.purchases if not p.expired and p.used < p.amount]
        if not live:
            return None
        live.sort(key=lambda p: (p.expires_at is None, p.expires_at or p.created_at, p.created_at))
        live[0].used += 1
        return ("purchase", live[0].purchase_id)

    def remaining(self) -> int:
        monthly = self.monthly_limit - self.monthly_used[self.period]
        return monthly + sum(p.amount - p.used for p in self.purchases if not p.expired)


async def _spend(pool: AsyncConnectionPool, auth_user_id: uuid.UUID) -> tuple[str, Any] | None:
    try:
        async with pool.connection() as conn, conn.transaction():
            spent = await credits.spend_credit(
                conn,
                auth_user_id=auth_user_id,
                idempotency_key=str(uuid.uuid4()),
                request_hash="h",
                recipient_name="Maria",
                destination_postal_code="01310100",
                weight_grams=100,
                reference=None,
            )
    except credits.InsufficientCredits:
        return None
    return (spent.credit.source_type, spent.credit.purchase_id)


async def _run(database_url: str, monthly_limit: int, operations: list[tuple[Any, ...]]) -> None:
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=5, open=False)
    await pool.open(wait=True)
    try:
        ledger = Ledger(pool)
        customer = await ledger.customer(monthly_credits=monthly_limit)
        model = Model(monthly_limit)
        for operation in operations:
            kind = operation[0]
            if kind == "grant":
                _, amount, days = operation
                async with pool.connection() as conn:
                    cur = await conn.execute(
                        "INSERT INTO credit_purchases (profile_id, credits_amount, expires_at) "
                        "VALUES (%s, %s, now() + %s) RETURNING purchase_id, expires_at, created_at",
                        (customer.profile_id, amount, timedelta(days=days) if days else None),
                    )
                    row = await cur.fetchone()
                assert row is not None
                model.purchases.append(Purchase(row[0], amount, row[1], row[2]))
            elif kind == "expire" and model.purchases:
                purchase = model.purchases[operation[1] % len(model.purchases)]
                async with pool.connection() as conn:
                    await conn.execute(
                        "UPDATE credit_purchases SET expires_at = now() - interval '1 second' "
                        "WHERE purchase_id = %s",
                        (purchase.purchase_id,),
                    )
                purchase.expired = True
            elif kind == "period":
                model.period += 1
                async with pool.connection() as conn:
                    await conn.execute(
                        "UPDATE profiles SET current_period_end = now() + interval '29 days', "
                        "current_period_start = now() - interval '1 day' + %s * interval '1 s' "
                        "WHERE profile_id = %s",
                        (model.period, customer.profile_id),
                    )
            elif kind == "spend":
                # Concurrent spends serialize, so as a batch they equal that many spends in a row.
                got = await asyncio.gather(
                    *(_spend(pool, customer.auth_user_id) for _ in range(operation[1]))
                )
                expected = [model.spend() for _ in range(operation[1])]
                assert Counter(got) == Counter(expected), (got, expected)
        async with pool.connection() as conn:
            found = await credits.balance(conn, customer.profile_id)
        assert found is not None and found.total_remaining == model.remaining()
        await ledger.assert_balanced()
    finally:
        await pool.close()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(monthly_limit=st.integers(0, 3), operations=OPERATIONS)
def test_random_interleavings_never_overspend(
    database_url: str, monthly_limit: int, operations: list[tuple[Any, ...]]
) -> None:
    """Random grants, concurrent spends, expiries and period changes match the model exactly."""
    # Each example runs its own event loop in a thread, away from the session's loop.
    with ThreadPoolExecutor(1) as executor:
        executor.submit(asyncio.run, _run(database_url, monthly_limit, operations)).result()
