"""Property: whatever mix of grants, spends, expiries and period changes runs at the same time, the
ledger never overspends and always spends in the documented order.

Operations run in concurrent batches. Spends of one profile serialize, and every other operation is
one short transaction, so a batch must end exactly as SOME order of its operations would have ended
in a model of the rules; the test finds that order or fails.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
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

SPEND = st.just(("spend",))
GRANT = st.tuples(st.just("grant"), st.integers(1, 3), st.none() | st.integers(1, 3))
EXPIRE = st.tuples(st.just("expire"), st.integers(0, 10))  # which purchase, modulo their count
PERIOD = st.just(("period",))
# One batch runs concurrently; spends are listed twice to make them the common case.
BATCHES = st.lists(
    st.lists(st.one_of(SPEND, SPEND, GRANT, EXPIRE, PERIOD), min_size=1, max_size=4),
    min_size=1,
    max_size=8,
)

Spent = tuple[str, uuid.UUID | None, datetime | None] | None  # source, purchase, period; None: 402


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
    period_start: datetime
    monthly_used: Counter[datetime] = field(default_factory=Counter)
    purchases: list[Purchase] = field(default_factory=list)

    def spend(self) -> Spent:
        if self.monthly_used[self.period_start] < self.monthly_limit:
            self.monthly_used[self.period_start] += 1
            return ("monthly", None, self.period_start)
        live = [p for p in self.purchases if not p.expired and p.used < p.amount]
        if not live:
            return None
        live.sort(key=lambda p: (p.expires_at is None, p.expires_at or p.created_at, p.created_at))
        live[0].used += 1
        return ("purchase", live[0].purchase_id, None)

    def apply(self, event: tuple[Any, ...]) -> Spent | None:
        kind = event[0]
        if kind == "spend":
            return self.spend()
        if kind == "grant":
            self.purchases.append(copy.copy(event[1]))
        elif kind == "expire":
            next(p for p in self.purchases if p.purchase_id == event[1]).expired = True
        elif kind == "period":
            self.period_start = event[1]
        return None

    def remaining(self) -> int:
        monthly = self.monthly_limit - self.monthly_used[self.period_start]
        return monthly + sum(p.amount - p.used for p in self.purchases if not p.expired)


class Runner:
    """Runs one operation against the database and reports it as a model event."""

    def __init__(self, pool: AsyncConnectionPool, auth_user_id: uuid.UUID, profile_id: uuid.UUID):
        self.pool = pool
        self.auth_user_id = auth_user_id
        self.profile_id = profile_id
        self.periods = 0

    async def period(self) -> datetime:
        """The profile's current period, as it is now."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT current_period_start FROM profiles WHERE profile_id = %s",
                (self.profile_id,),
            )
            row = await cur.fetchone()
        assert row is not None
        start: datetime = row[0]
        return start

    async def spend(self) -> tuple[Any, ...]:
        try:
            async with self.pool.connection() as conn, conn.transaction():
                spent = await credits.spend_credit(
                    conn,
                    auth_user_id=self.auth_user_id,
                    idempotency_key=str(uuid.uuid4()),
                    request_hash="h",
                    recipient_name="Maria",
                    destination_postal_code="01310100",
                    weight_grams=100,
                    reference=None,
                )
        except credits.InsufficientCredits:
            return ("spend", None)
        period = (
            spent.balance.monthly.period_start if spent.credit.source_type == "monthly" else None
        )
        return ("spend", (spent.credit.source_type, spent.credit.purchase_id, period))

    async def grant(self, amount: int, days: int | None) -> tuple[Any, ...]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO credit_purchases (profile_id, credits_amount, expires_at) "
                "VALUES (%s, %s, now() + %s) RETURNING purchase_id, expires_at, created_at",
                (self.profile_id, amount, timedelta(days=days) if days else None),
            )
            row = await cur.fetchone()
        assert row is not None
        return ("grant", Purchase(row[0], amount, row[1], row[2]))

    async def expire(self, purchase_id: uuid.UUID) -> tuple[Any, ...]:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE credit_purchases SET expires_at = now() - interval '1 second' "
                "WHERE purchase_id = %s",
                (purchase_id,),
            )
        return ("expire", purchase_id)

    async def new_period(self, n: int) -> tuple[Any, ...]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE profiles SET current_period_end = now() + interval '29 days', "
                "current_period_start = now() - interval '1 day' + %s * interval '1 s' "
                "WHERE profile_id = %s RETURNING current_period_start",
                (n, self.profile_id),
            )
            row = await cur.fetchone()
        assert row is not None
        return ("period", row[0])


def _explain(model: Model, events: list[tuple[Any, ...]], period: datetime) -> Model | None:
    """The model after some order of `events` that yields exactly the observed spends and leaves
    the profile in the observed `period`."""
    observed = Counter(e[1] for e in events if e[0] == "spend")
    others = [e for e in events if e[0] != "spend"]
    spends = len(events) - len(others)
    for ranked in itertools.permutations(others):
        for at in itertools.combinations(range(len(events)), spends):
            rest = iter(ranked)
            order = [("spend",) if i in at else next(rest) for i in range(len(events))]
            candidate = copy.deepcopy(model)
            results = [candidate.apply(e) for e in order]
            spent = Counter(r for e, r in zip(order, results, strict=True) if e[0] == "spend")
            if spent == observed and candidate.period_start == period:
                return candidate
    return None


async def _run(database_url: str, monthly_limit: int, batches: list[list[tuple[Any, ...]]]) -> None:
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=6, open=False)
    await pool.open(wait=True)
    try:
        ledger = Ledger(pool)
        customer = await ledger.customer(monthly_credits=monthly_limit)
        runner = Runner(pool, customer.auth_user_id, customer.profile_id)
        model = Model(monthly_limit, await runner.period())
        for batch in batches:
            work = []
            for operation in batch:
                if operation[0] == "spend":
                    work.append(runner.spend())
                elif operation[0] == "grant":
                    work.append(runner.grant(operation[1], operation[2]))
                elif operation[0] == "expire" and model.purchases:
                    target = model.purchases[operation[1] % len(model.purchases)]
                    work.append(runner.expire(target.purchase_id))
                elif operation[0] == "period":
                    runner.periods += 1
                    work.append(runner.new_period(runner.periods))
            events = list(await asyncio.gather(*work))
            explained = _explain(model, events, await runner.period())
            assert explained is not None, f"no order of {batch} explains {events}; model {model}"
            model = explained
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
@given(monthly_limit=st.integers(0, 3), batches=BATCHES)
def test_random_interleavings_never_overspend(
    clean_db: str, monthly_limit: int, batches: list[list[tuple[Any, ...]]]
) -> None:
    """Concurrent grants, spends, expiries and period changes end as some order of them would."""
    # `clean_db`: the ledger's whole-database checks must not see what earlier tests left (a
    # profile moved to a smaller plan mid-period is legitimately "over" its new limit).
    # Each example runs its own event loop in a thread, away from the session's loop.
    with ThreadPoolExecutor(1) as executor:
        executor.submit(asyncio.run, _run(clean_db, monthly_limit, batches)).result()
