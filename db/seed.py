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
# docs/interfaces.md: the product the sandbox's payments carry unless a test names another.
DEV_PRODUCT = {
    "product_id": "entrega-acesso",
    "name": "Acesso Entrega",
    "currency": "BRL",
    "price_cents": 4990,
}


def seed_dev_plan(database_url: str) -> None:
    """The `basic` plan: monthly, R$ 49,90, 100 credits per period, and the product
    `entrega-acesso` at R$ 49,90 (idempotent)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            """
            INSERT INTO plans (plan_id, name, price_cents, cycle, monthly_credits)
            VALUES (%(plan_id)s, %(name)s, %(price_cents)s, %(cycle)s, %(monthly_credits)s)
            ON CONFLICT (plan_id) DO NOTHING
            """,
            DEV_PLAN,
        )
        seed_dev_product(conn)


def seed_dev_product(conn: psycopg.Connection[object]) -> None:
    """The product `entrega-acesso`, R$ 49,90 in BRL with no end date, unless it exists."""
    row = conn.execute(
        """
        INSERT INTO products (product_id, name, currency, created_by)
        VALUES (%(product_id)s, %(name)s, %(currency)s, 'seed')
        ON CONFLICT (product_id) DO NOTHING
        RETURNING product_id
        """,
        DEV_PRODUCT,
    ).fetchone()
    if row is not None:
        conn.execute(
            """
            INSERT INTO product_prices (product_id, price_cents, created_by)
            VALUES (%(product_id)s, %(price_cents)s, 'seed')
            """,
            DEV_PRODUCT,
        )
