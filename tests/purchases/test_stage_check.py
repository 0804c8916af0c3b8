"""`orders.stage` holds only the purchase stages, `email_logs` only the e-mails Entrega sends and
their two outcomes: the database refuses anything else."""

from __future__ import annotations

import re

import psycopg
import pytest

from activities.emails import EmailType
from contracts.purchases import STAGES

pytestmark = pytest.mark.db


async def test_an_unknown_stage_is_refused(pool) -> None:
    """A stage outside the documented list cannot be written, by insert or by update."""
    async with pool.connection() as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute(
                "INSERT INTO orders (order_id, provider, provider_order_id, stage) "
                "VALUES ('purchase:mercadopago:1', 'mercadopago', '1', 'provisioning')"
            )
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO orders (order_id, provider, provider_order_id, stage) "
            "VALUES ('purchase:mercadopago:2', 'mercadopago', '2', 'queued')"
        )
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute(
                "UPDATE orders SET stage = 'Completed' WHERE order_id = 'purchase:mercadopago:2'"
            )


async def test_the_check_lists_exactly_the_workflow_stages(pool) -> None:
    """The constraint and the workflow's `Stage` name the same stages, so neither drifts."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'orders_stage_check' AND conrelid = 'orders'::regclass"
        )
        row = await cur.fetchone()
    assert row is not None
    assert set(re.findall(r"'(\w+)'::text", row[0])) == set(STAGES)


async def test_email_logs_hold_only_known_types_and_outcomes(pool) -> None:
    """The same for `email_logs`: an unknown e-mail type or status is refused."""
    insert = (
        "INSERT INTO email_logs (workflow_id, email_type, recipient, idempotency_key, status) "
        "VALUES ('purchase:mercadopago:1', %s, 'ana@example.com', %s, %s)"
    )
    for email_type, status in [("welcome", "sent"), ("credentials", "bounced")]:
        async with pool.connection() as conn:
            with pytest.raises(psycopg.errors.CheckViolation):
                await conn.execute(insert, (email_type, f"k-{email_type}", status))
    async with pool.connection() as conn:
        for email_type in EmailType.__args__:  # type: ignore[attr-defined]
            await conn.execute(insert, (email_type, f"k-{email_type}", "failed"))
