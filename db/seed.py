"""Data every dev stack starts with."""

from __future__ import annotations

import psycopg

DEV_PLAN = {
    "plan_id": "basic",
    "name": "Básico",
    "price_cents": 4990,
    "cycle": "MONTHLY",
    "monthly_credits": 100,
}


def seed_dev_plan(database_url: str) -> None:
    """The `basic` plan: monthly, R$ 49,90, 100 credits per period (idempotent)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            """
            INSERT INTO plans (plan_id, name, price_cents, cycle, monthly_credits)
            VALUES (%(plan_id)s, %(name)s, %(price_cents)s, %(cycle)s, %(monthly_credits)s)
            ON CONFLICT (plan_id) DO NOTHING
            """,
            DEV_PLAN,
        )
