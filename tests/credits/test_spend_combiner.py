"""Spends of one profile waiting at the same time share one statement and one commit
(db.credits.SpendCombiner, migration 0096), and each is still exactly the spend it was alone."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from db import credits
from tests.credits.conftest import Customer, Ledger

pytestmark = pytest.mark.db


def _spend(customer: Customer, key: str | None = None, **changes: object) -> credits.SpendRequest:
    fields: dict[str, object] = {
        "auth_user_id": customer.auth_user_id,
        "idempotency_key": key or str(uuid.uuid4()),
        "request_hash": "h1",
        "recipient_name": "Maria",
        "destination_postal_code": "01310100",
        "weight_grams": 500,
        "reference": None,
        **changes,
    }
    return credits.SpendRequest(**fields)  # type: ignore[arg-type]


async def _outcomes(
    spends: credits.SpendCombiner, requests: list[credits.SpendRequest]
) -> list[credits.Spent | BaseException]:
    return await asyncio.gather(*(spends.spend(r) for r in requests), return_exceptions=True)


async def test_a_burst_on_one_profile_spends_what_it_has_in_fewer_commits(
    pool: AsyncConnectionPool, ledger: Ledger
) -> None:
    """60 spends at once on 20 monthly + 30 purchased credits: 50 shipments, monthly first, ten
    refused, every balance answered once, and fewer statements than spends."""
    customer = await ledger.customer(monthly_credits=20)
    await ledger.purchase(customer, 30)
    spends = credits.SpendCombiner(pool, max_batch=8)
    outcomes = await _outcomes(spends, [_spend(customer) for _ in range(60)])
    created = [o for o in outcomes if isinstance(o, credits.Spent)]
    assert len(created) == 50
    assert Counter(type(o) for o in outcomes if not isinstance(o, credits.Spent)) == {
        credits.InsufficientCredits: 10
    }
    # In arrival order: the monthly credits go first, then the purchase.
    assert [s.credit.source_type for s in created] == ["monthly"] * 20 + ["purchase"] * 30
    assert sorted(s.balance.total_remaining for s in created) == list(range(50))
    assert len({s.shipment_id for s in created}) == 50
    # The first alone, the 59 that waited on it in batches of at most 8.
    assert spends.spends == 60 and spends.statements == 1 + 8
    await ledger.assert_balanced()


async def test_a_key_used_twice_in_one_statement_replays_its_first_use(
    pool: AsyncConnectionPool, ledger: Ledger
) -> None:
    """The second use of a key in the same batch answers the first's shipment; the key with
    another body is refused; only one credit is spent."""
    customer = await ledger.customer(monthly_credits=5)
    spends = credits.SpendCombiner(pool)
    first, again, other_body = await _outcomes(
        spends,
        [
            _spend(customer, "k-1"),
            _spend(customer, "k-1"),
            _spend(customer, "k-1", request_hash="h2"),
        ],
    )
    assert spends.statements == 2  # the first alone, the two that waited on it together
    assert isinstance(first, credits.Spent) and isinstance(again, credits.Spent)
    assert not first.replayed and again.replayed
    assert again.shipment_id == first.shipment_id
    assert isinstance(other_body, credits.IdempotencyKeyReused)
    assert await ledger.usage(customer) == [("monthly", None)]
    await ledger.assert_balanced()


async def test_a_failing_spend_fails_alone(pool: AsyncConnectionPool, ledger: Ledger) -> None:
    """A spend the database refuses (a weight its CHECK rejects) takes its batch's statement
    down; the others of the batch are served again one by one, and only it fails."""
    customer = await ledger.customer(monthly_credits=5)
    spends = credits.SpendCombiner(pool)
    first, good, bad, also_good = await _outcomes(
        spends,
        [_spend(customer), _spend(customer), _spend(customer, weight_grams=0), _spend(customer)],
    )
    assert all(isinstance(s, credits.Spent) for s in (first, good, also_good))
    assert isinstance(bad, psycopg.errors.CheckViolation)
    assert spends.statements == 1 + 1 + 3  # the first alone, the batch, then each of it alone
    assert len(await ledger.usage(customer)) == 3
    await ledger.assert_balanced()


async def test_a_caller_that_goes_away_while_waiting_leaves_its_spend_to_its_key(
    pool: AsyncConnectionPool, ledger: Ledger
) -> None:
    """A request cancelled while its spend waits behind another of its profile does not take the
    spend back: the batch still commits it, and the same key replays it."""
    customer = await ledger.customer(monthly_credits=5)
    spends = credits.SpendCombiner(pool)
    running = asyncio.create_task(spends.spend(_spend(customer)))
    await asyncio.sleep(0)  # in flight
    gone = asyncio.create_task(spends.spend(_spend(customer, "k-gone")))
    await asyncio.sleep(0)  # waiting behind it
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert not (await running).replayed
    replay = await spends.spend(_spend(customer, "k-gone"))
    assert replay.replayed
    assert len(await ledger.usage(customer)) == 2
    await ledger.assert_balanced()
