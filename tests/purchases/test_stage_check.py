"""`orders.stage` holds only the purchase stages: the database refuses anything else."""

from __future__ import annotations

import re

import psycopg
import pytest

from workflows.purchase_types import STAGES

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
