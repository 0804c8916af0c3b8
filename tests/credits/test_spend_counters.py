"""The row a spend locks counts the profile's spends, and always agrees with credit_usage; a
shipment spend_credit takes back inside its transaction is not a shipment without credit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from db import credits, embedded
from db.migrate import migrate
from tests.credits.conftest import SHIPMENT, Ledger, entrega
from tests.credits.test_backfill import _only_up_to

pytestmark = pytest.mark.db

COUNTERS = 95  # the migration that adds credit_spend_counters


async def _drift(ledger: Ledger) -> list[tuple[object, ...]]:
    async with ledger.pool.connection() as conn:
        cur = await conn.execute("SELECT * FROM credit_spend_counter_drift")
        return await cur.fetchall()


async def test_counter_agrees_with_the_ledger_after_racing_spends(
    clean_db: str, api: httpx.AsyncClient, ledger: Ledger
) -> None:
    """Racing first spends, refusals and same-key races leave the counter equal to the usage rows,
    and the API's last answer, the balance view and `credits show` agree."""
    customer = await ledger.customer(monthly_credits=3)
    await ledger.purchase(customer, 4)
    keys = [str(uuid.uuid4()) for _ in range(20)] + ["same"] * 10
    responses = await asyncio.gather(
        *(api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers(k)) for k in keys)
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] >= 7 and statuses[201] + statuses[402] == 30
    assert len({r.json()["shipment_id"] for r in responses if r.status_code == 201}) == 7
    assert await _drift(ledger) == []
    async with ledger.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT spent FROM credit_spend_counters WHERE profile_id = %s", (customer.profile_id,)
        )
        assert await cur.fetchone() == (7,)
        balance = await credits.balance(conn, customer.profile_id)
    assert balance is not None and balance.total_remaining == 0
    shown = await entrega(clean_db, "credits", "show", str(customer.profile_id), "--json")
    assert json.loads(shown.output)["total_remaining"] == 0
    await ledger.assert_balanced()


async def test_a_shipment_taken_back_in_its_transaction_commits(ledger: Ledger) -> None:
    """A shipment inserted and deleted in one transaction leaves nothing to check at commit (what
    spend_credit does when no credit is left), while one left in place is still refused."""
    customer = await ledger.customer(monthly_credits=2)
    insert = (
        "INSERT INTO shipments (shipment_id, profile_id, recipient_name, destination_postal_code, "
        "weight_grams) VALUES (%s, %s, 'A', '01310100', 10)"
    )
    gone = uuid.uuid4()
    async with ledger.pool.connection() as conn, conn.transaction():
        await conn.execute(insert, (gone, customer.profile_id))
        await conn.execute("DELETE FROM shipments WHERE shipment_id = %s", (gone,))
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="no credit_usage"):
        async with ledger.pool.connection() as conn, conn.transaction():
            await conn.execute(insert, (uuid.uuid4(), customer.profile_id))
            await conn.execute(insert, (gone, customer.profile_id))
            await conn.execute("DELETE FROM shipments WHERE shipment_id = %s", (gone,))
    assert await ledger.count("shipments") == 0


@pytest.fixture
def before_counters(postgres_server_url: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database migrated up to the migration before the counters."""
    name = f"entrega_counters_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = embedded.database_url(postgres_server_url, name)
    migrate(url, _only_up_to(COUNTERS - 1, tmp_path / "before"))
    yield url
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_migration_counts_what_was_spent_before_it(before_counters: str) -> None:
    """Spends made by the previous spend_credit are counted when the counters arrive, and the
    next spend goes on from there."""
    spend = (
        "SELECT outcome, balance FROM spend_credit(%s, %s, 'h', gen_random_uuid(), 'A', "
        "'01310100', 10, NULL)"
    )
    with psycopg.connect(before_counters, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO plans (plan_id, name, price_cents, monthly_credits) "
            "VALUES ('five', 'Cinco', 1000, 5)"
        )
        user = uuid.uuid4()
        conn.execute(
            """
            INSERT INTO profiles (auth_user_id, name, email, phone, cpf_cnpj, plan_id,
                                  current_period_start, current_period_end)
            VALUES (%s, 'A', 'a@example.com', '+5511', '1', 'five',
                    now() - interval '1 day', now() + interval '29 days')
            """,
            (user,),
        )
        for n in range(3):
            assert conn.execute(spend, (user, f"k{n}")).fetchone()[0] == "created"
    migrate(before_counters)
    with psycopg.connect(before_counters, autocommit=True) as conn:
        assert conn.execute("SELECT spent FROM credit_spend_counters").fetchall() == [(3,)]
        outcome, balance = conn.execute(spend, (user, "k3")).fetchone()
        assert (outcome, balance["monthly"]["used"]) == ("created", 4)
        assert conn.execute("SELECT spent FROM credit_spend_counters").fetchall() == [(4,)]
        assert conn.execute("SELECT * FROM credit_spend_counter_drift").fetchall() == []
