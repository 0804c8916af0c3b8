"""Customers with plans, periods and purchases seeded straight into the database, and the API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from click.testing import Result
from psycopg_pool import AsyncConnectionPool
from typer.testing import CliRunner

from api.app import create_app
from cli import app as cli_app
from settings import Settings
from tests.conftest import TEST_SECRETS
from tests.support import serve, user_token

pytestmark = pytest.mark.db


def current_period(now: datetime | None = None) -> tuple[datetime, datetime]:
    """A subscription period that started yesterday and ends in 29 days."""
    now = now or datetime.now(UTC)
    return now - timedelta(days=1), now + timedelta(days=29)


@dataclass
class Customer:
    profile_id: uuid.UUID
    auth_user_id: uuid.UUID

    def headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        token = user_token(TEST_SECRETS["supabase_jwt_secret"], str(self.auth_user_id))
        return {
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": idempotency_key or str(uuid.uuid4()),
        }


class Ledger:
    """Seeds plans, profiles and purchases, and reads what the ledger holds."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def customer(
        self,
        monthly_credits: int | None = 2,
        period: tuple[datetime, datetime] | None = None,
        *,
        subscribed: bool = True,
    ) -> Customer:
        """A profile on a plan of `monthly_credits` (None: no plan) in `period` (default: now),
        with an Asaas subscription unless `subscribed` is False (a sign-up before its checkout)."""
        plan_id = None
        async with self.pool.connection() as conn:
            if monthly_credits is not None:
                plan_id = f"plan-{monthly_credits}"
                await conn.execute(
                    "INSERT INTO plans (plan_id, name, price_cents, monthly_credits) "
                    "VALUES (%s, %s, 1000, %s) ON CONFLICT DO NOTHING",
                    (plan_id, plan_id, monthly_credits),
                )
            start, end = period or current_period()
            auth_user_id = uuid.uuid4()
            digits = str(uuid.uuid4().int)[:11]
            cur = await conn.execute(
                """
                INSERT INTO profiles (auth_user_id, name, email, phone, cpf_cnpj, plan_id,
                                      current_period_start, current_period_end, subscription_id)
                VALUES (%s, 'Cliente', %s, %s, %s, %s, %s, %s, %s)
                RETURNING profile_id
                """,
                (
                    auth_user_id,
                    f"{digits}@example.com",
                    f"+55{digits}",
                    digits,
                    plan_id,
                    start,
                    end,
                    f"sub_{digits}" if subscribed else None,
                ),
            )
            row = await cur.fetchone()
        assert row is not None
        return Customer(row[0], auth_user_id)

    async def purchase(
        self,
        customer: Customer,
        credits_amount: int,
        *,
        expires_at: datetime | None = None,
        created_at: datetime | None = None,
    ) -> uuid.UUID:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """
                INSERT INTO credit_purchases (profile_id, credits_amount, expires_at, created_at)
                VALUES (%s, %s, %s, coalesce(%s, now()))
                RETURNING purchase_id
                """,
                (customer.profile_id, credits_amount, expires_at, created_at),
            )
            row = await cur.fetchone()
        assert row is not None
        return row[0]

    async def set_period(self, customer: Customer, start: datetime, end: datetime) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE profiles SET current_period_start = %s, current_period_end = %s "
                "WHERE profile_id = %s",
                (start, end, customer.profile_id),
            )

    async def count(self, table: str) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(f"SELECT count(*) FROM {table}")
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def usage(self, customer: Customer) -> list[tuple[str, uuid.UUID | None]]:
        """(source_type, purchase_id) of each credit the customer spent, in spending order."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT source_type, purchase_id FROM credit_usage WHERE profile_id = %s "
                "ORDER BY created_at, shipment_id",
                (customer.profile_id,),
            )
            return [(r[0], r[1]) for r in await cur.fetchall()]

    async def assert_balanced(self) -> None:
        """Every shipment has one credit, no grant is overspent, and units are 1..n per grant."""
        async with self.pool.connection() as conn:
            checks = {
                "shipment without usage": """
                    SELECT count(*) FROM shipments s
                    WHERE NOT EXISTS (SELECT 1 FROM credit_usage u
                                      WHERE u.shipment_id = s.shipment_id)""",
                "overspent purchase": """
                    SELECT count(*) FROM credit_purchases p
                    WHERE (SELECT count(*) FROM credit_usage u
                           WHERE u.purchase_id = p.purchase_id) > p.credits_amount""",
                "overspent period": """
                    SELECT count(*) FROM (
                        SELECT u.profile_id, u.period_start, count(*) AS n
                        FROM credit_usage u WHERE u.source_type = 'monthly'
                        GROUP BY 1, 2) g
                    JOIN profiles pr USING (profile_id) JOIN plans pl USING (plan_id)
                    WHERE g.n > pl.monthly_credits""",
                "grant with gaps in its units": """
                    SELECT count(*) FROM (
                        SELECT coalesce(purchase_id::text, profile_id::text || period_start::text)
                        FROM credit_usage GROUP BY 1 HAVING max(unit) <> count(*)) g""",
            }
            for name, query in checks.items():
                cur = await conn.execute(query)
                row = await cur.fetchone()
                assert row is not None and row[0] == 0, name


@pytest.fixture
def ledger(pool: AsyncConnectionPool) -> Ledger:
    return Ledger(pool)


@pytest.fixture
async def api(pool: AsyncConnectionPool, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API over real HTTP, sharing the test pool."""
    async with (
        serve(create_app(settings, pool=pool)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield client


SHIPMENT = {
    "recipient_name": "Maria Silva",
    "destination_postal_code": "01310-100",
    "weight_grams": 500,
}


async def entrega(database_url: str, *args: str) -> Result:
    """Run the `entrega` CLI on `database_url`, in a thread (it runs its own event loop)."""
    env = {"DATABASE_URL": database_url, "ENTREGA_ENV": "test"}
    return await asyncio.to_thread(CliRunner().invoke, cli_app, list(args), env=env)
